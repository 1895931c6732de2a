#!/usr/bin/env bash
# End-to-end benchmark: PutRecordBatch → sluice → S3 (s3rver, a real S3
# server from npm, on the same machine), as GZIP JSON and as Parquet
# (snappy). Each run offers load for SECONDS, then waits until the backlog
# is delivered; the end-to-end rate is records delivered / time from the
# first request until the last object is written.
# Usage: deploy/bench/s3.sh [SECONDS]   (default 20). Needs deploy/install-test-deps.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-20}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
go build -o "$work/sluice" ./cmd/sluice
port=4599 s3port=4569
node --openssl-legacy-provider deploy/testpeers/node_modules/s3rver/bin/s3rver.js -d "$work/s3" -a 127.0.0.1 -p $s3port --configure-bucket bench --silent &
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$s3port/" && break; sleep 0.1; done
metric() { curl -s "http://127.0.0.1:$port/metrics" | awk -v m="$1" '$1 ~ "^"m"[{]" {s+=$2} END {printf "%.0f", s}'; }

run() { # name, destination-yaml
  local name=$1 dest=$2
  cat > "$work/$name.yaml" <<YAML
listen: 127.0.0.1:$port
log: {level: warn}
buffer: {max_bytes: 8GiB}
memory_limit: 256MiB
streams:
  bench:
    buffering: {size: 64, interval: 5}
    retry: {duration: 60}
    destination:
      type: s3
      bucket: bench
      endpoint: http://127.0.0.1:$s3port
      force_path_style: true
      access_key_id: S3RVER
      secret_access_key: S3RVER
      prefix: $name/
$dest
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
  local p99=$(sed -n 's/.*"p99_ms": \([0-9.]*\).*/\1/p' "$work/$name.load.json")
  awk -v n="$name" -v d="$delivered" -v s="$start" -v e="$end" -v r="$rss" -v p="$p99" -v x="$dead" \
    'BEGIN{t=e-s; printf "%-12s %10d %8.1f %12.0f %9.1f %9.2f %9.1f %6d\n", n, d, t, d/t, d*1024/t/1048576, p, r, x}'
}

printf '%-12s %10s %8s %12s %9s %9s %9s %6s\n' run delivered seconds records/s MiB/s p99_ms rss_MiB dead
run gzip-json "      compression: GZIP
      append_newline: true"
run parquet "      format:
        type: parquet
        parquet:
          compression: snappy
          columns:
            - {name: event_id, type: string, required: true}
            - {name: ts, type: timestamp, unit: millis}
            - {name: user_id, type: int64}
            - {name: country, type: string}
            - {name: amount, type: double}
            - {name: tags, type: list, items: {type: string}}
            - {name: device, type: struct, fields: [{name: os, type: string}, {name: version, type: string}]}
            - {name: note, type: string}"
echo "PutRecordBatch 500 x 1 KiB JSON records, concurrency 8, ${secs}s of load, s3rver on the same $(nproc) cores"
