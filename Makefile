# The README's two commands: `make quickstart` and `make test`.
GO ?= go
export PATH := $(shell $(GO) env GOPATH)/bin:$(PATH)

.PHONY: quickstart test lint unit tools bench build

build:
	$(GO) build -o sluice ./cmd/sluice

quickstart:
	$(GO) run ./cmd/sluice run -c examples/quickstart.yaml

# test installs what the tests need (idempotent), lints, then runs every test
# with the race detector. It is what CI runs (.ci/run).
test: tools lint unit

tools:
	./deploy/install-test-deps.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	staticcheck ./...

unit:
	$(GO) test -race -count=1 -timeout 20m ./...

# bench runs the Go benchmarks and the side-by-side ingest load (see README).
bench:
	$(GO) test -run '^$$' -bench . -benchtime 2s ./buffer/... ./ingest/... ./pipeline/... ./destinations/...
	./deploy/bench/run.sh
