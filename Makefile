# The README's two commands: `make quickstart` and `make test`.
GO ?= go
export PATH := $(shell $(GO) env GOPATH)/bin:$(PATH)

.PHONY: quickstart test lint unit tools bench build release

build:
	$(GO) build -o sluice ./cmd/sluice

# release builds the static, stripped binary that is shipped (and that
# deploy/container/Containerfile builds with the same command): no cgo,
# no build paths (-trimpath), no VCS stamp (-buildvcs=false), no symbol
# tables; the only input besides the source and the Go toolchain is VERSION.
# Two builds of the same tree with the same toolchain and VERSION are
# byte-identical (deploy/checks tests it).
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
RELEASE_OUT ?= sluice
release:
	CGO_ENABLED=0 $(GO) build -trimpath -buildvcs=false -ldflags "-s -w -X main.version=$(VERSION)" -o $(RELEASE_OUT) ./cmd/sluice

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
