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
port=4599
metric() { curl -s "http://127.0.0.1:$port/metrics" | awk -v m="$1" '$1 ~ "^"m"[{]" {s+=$2} END {printf "%.0f", s}'; }

run() { # name, processors-yaml
  local name=$1 procs=$2
  cat > "$work/$name.yaml" <<YAML
listen: 127.0.0.1:$port
log: {level: warn}
buffer: {max_bytes: 8GiB}
streams:
  bench:
    buffering: {size: 5, interval: 5}
$procs
    destination: {type: file, path: out, append_newline: true}
YAML
  rm -rf "$work/data"
  "$work/sluice" run -c "$work/$name.yaml" --data-dir "$work/data" &
  local pid=$!
  for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/healthz" && break; sleep 0.1; done
  local start=$(date +%s.%N)
  "$work/sluice" load --endpoint "http://127.0.0.1:$port" --stream bench --payload json --record-size 1024 \
    --concurrency 8 --duration "${secs}s" --warmup 0s --pid $pid --json > "$work/$name.load.json"
  while [ "$(metric sluice_buffer_backlog_bytes)" != 0 ]; do sleep 0.2; done
  local end=$(date +%s.%N)
  local delivered=$(metric sluice_delivery_records_total) dead=$(metric sluice_dead_letter_records_total)
  local rss=$(awk '/VmHWM/{printf "%.1f", $2/1024}' /proc/$pid/status)
  kill -TERM $pid; wait $pid || true
  awk -v n="$name" -v d="$delivered" -v s="$start" -v e="$end" -v r="$rss" -v x="$dead" \
    'BEGIN{t=e-s; printf "%-14s %10d %8.1f %12.0f %9.1f %9.1f %6d\n", n, d, t, d/t, d*1024/t/1048576, r, x}'
}

printf '%-14s %10s %8s %12s %9s %9s %6s\n' run delivered seconds records/s MiB/s rss_MiB dead
run none ""
run passthrough "    processors:
      - {type: wasm, module: $work/passthrough.wasm}"
run mask-email "    processors:
      - {type: wasm, module: $work/mask-email.wasm}"
echo "PutRecordBatch 500 x 1 KiB JSON records, concurrency 8, ${secs}s of load, $(nproc) cores; fsync buffer, file destination"
