#!/usr/bin/env bash
# Sustained end-to-end delivery against the durability ceiling, in one run:
#   1. refserver -mode fsync: append + one fsync per group of requests, the
#      most records/s this machine can make durable (the ceiling);
#   2. sluice → file destination (its default max_in_flight);
#   3. sluice → HTTP endpoint answering after 20 ms, max_in_flight 4;
#   4. the same with max_in_flight 1 (strict order: one batch at a time).
# Each sluice run offers full-speed load (PutRecordBatch, 500 x 1 KiB JSON
# records, concurrency 8) for SECONDS, then waits until every acknowledged
# record is delivered; its figure is records delivered ÷ (last delivery −
# load start). Ratios to the ceiling are printed at the end.
# Usage: deploy/bench/sustained.sh [SECONDS]   (default 15)
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-15}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
go build -o "$work/sluice" ./cmd/sluice
go build -o "$work/refserver" ./deploy/bench/refserver
go build -o "$work/httpreceiver" ./deploy/bench/httpreceiver
. deploy/bench/lib.sh
rport=4598

"$work/refserver" -mode fsync -listen "127.0.0.1:$port" -file "$work/ref.log" 2>/dev/null &
pid=$!
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/" -X POST -d '{}' && break; sleep 0.1; done
"$work/sluice" load --endpoint "http://127.0.0.1:$port" --stream bench --payload json --record-size 1024 \
  --concurrency 8 --duration "${secs}s" --warmup 0s --pid $pid --json > "$work/ceiling.json"
kill $pid; wait $pid 2>/dev/null || true; rm -f "$work/ref.log"
ceiling=$(sed -n 's/.*"records_per_sec": \([0-9.]*\).*/\1/p' "$work/ceiling.json")

config() { # name, max_in_flight line, destination yaml
  cat > "$work/$1.yaml" <<YAML
listen: 127.0.0.1:$port
log: {level: warn}
buffer: {max_bytes: 8GiB}
streams:
  bench:
    buffering: {size: 5, interval: 1}
$2
$3
YAML
  echo "$work/$1.yaml"
}
http_dest="    destination: {type: http_endpoint, url: 'http://127.0.0.1:$rport/'}
    error_output: {type: file, path: errors}"

rows=()
e2e_header
row=$(e2e_run file "$(config file "" "    destination: {type: file, path: out}")"); echo "$row"; rows+=("$row")
"$work/httpreceiver" -addr "127.0.0.1:$rport" -delay 20ms &
rpid=$!
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$rport/stats" && break; sleep 0.1; done
row=$(e2e_run http-4 "$(config http-4 "    max_in_flight: 4" "$http_dest")"); echo "$row"; rows+=("$row")
row=$(e2e_run http-1 "$(config http-1 "    max_in_flight: 1" "$http_dest")"); echo "$row"; rows+=("$row")
kill $rpid; wait $rpid 2>/dev/null || true

printf '\nceiling (refserver -mode fsync): %.0f records/s\n' "$ceiling"
for r in "${rows[@]}"; do
  awk -v c="$ceiling" '{printf "%-8s %10.0f records/s  %.2fx the ceiling\n", $1, $4, $4/c}' <<<"$r"
done
echo "PutRecordBatch 500 x 1 KiB JSON records, concurrency 8, ${secs}s of load, on $(nproc) cores"
