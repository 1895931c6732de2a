#!/usr/bin/env bash
# CPU cost per record, end to end into S3 (s3rver): the daemon's CPU seconds
# (user + system, from /proc) per million records delivered, for a fixed
# offered load (40k records/s of 1 KiB JSON for 10 s, 64 MiB batches, GZIP
# JSON or Parquet). Less noisy than throughput on a shared 2-core machine,
# so it can compare two builds: pass another checkout's root to measure it.
# Usage: deploy/bench/s3cpu.sh gzip|parquet [TREE]   (TREE default: this one)
set -euo pipefail
cd "$(dirname "$0")/../.."
fmt=${1:?gzip or parquet}; tree=${2:-.}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
(cd "$tree" && go build -o "$work/sluice" ./cmd/sluice)
. deploy/bench/lib.sh
s3port=4569
start_s3rver
case "$fmt" in
gzip) s3_config "$work/c.yaml" cpu "$gzip_json" ;;
parquet) s3_config "$work/c.yaml" cpu "$parquet_snappy" ;;
*) echo "s3cpu.sh: gzip or parquet" >&2; exit 2 ;;
esac
"$work/sluice" run -c "$work/c.yaml" --data-dir "$work/data" &
pid=$!
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/healthz" && break; sleep 0.1; done
"$work/sluice" load --endpoint "http://127.0.0.1:$port" --stream bench --payload json --record-size 1024 \
  --concurrency 8 --duration 10s --warmup 0s --rate 40000 --json > "$work/load.json"
while [ "$(metric sluice_buffer_backlog_bytes)" != 0 ]; do sleep 0.2; done
delivered=$(metric sluice_delivery_records_total)
ticks=$(awk '{print $14+$15}' /proc/$pid/stat)
awk -v f="$fmt" -v t="$ticks" -v hz="$(getconf CLK_TCK)" -v d="$delivered" \
  'BEGIN{printf "%s: %d records delivered, %.2f CPU s, %.2f CPU s per million records\n", f, d, t/hz, t/hz/d*1e6}'
