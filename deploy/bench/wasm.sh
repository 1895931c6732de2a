#!/usr/bin/env bash
# End-to-end cost of a WebAssembly transform: PutRecordBatch → sluice →
# local directory, without a transform, with the pass-through Go guest and
# with the mask-email guest (examples/transforms). Each run offers load for
# SECONDS, then waits until the backlog is delivered; the rate is records
# delivered / time from the first request until the last object is written.
# Usage: deploy/bench/wasm.sh [SECONDS]   (default 20)
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-20}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
go build -o "$work/sluice" ./cmd/sluice
for g in passthrough mask-email; do
  GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o "$work/$g.wasm" "./examples/transforms/$g"
done
. deploy/bench/lib.sh

run() { # name, processors-yaml
  cat > "$work/$1.yaml" <<YAML
listen: 127.0.0.1:$port
log: {level: warn}
buffer: {max_bytes: 8GiB}
streams:
  bench:
    buffering: {size: 5, interval: 5}
$2
    destination: {type: file, path: out, append_newline: true}
YAML
  e2e_run "$1" "$work/$1.yaml"
}

e2e_header
run none ""
run passthrough "    processors:
      - {type: wasm, module: $work/passthrough.wasm}"
run mask-email "    processors:
      - {type: wasm, module: $work/mask-email.wasm}"
echo "PutRecordBatch 500 x 1 KiB JSON records, concurrency 8, ${secs}s of load, $(nproc) cores; fsync buffer, file destination"
