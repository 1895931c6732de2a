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
s3port=4569
. deploy/bench/lib.sh
node --openssl-legacy-provider deploy/testpeers/node_modules/s3rver/bin/s3rver.js -d "$work/s3" -a 127.0.0.1 -p $s3port --configure-bucket bench --silent &
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$s3port/" && break; sleep 0.1; done

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
  e2e_run "$name" "$work/$name.yaml"
}

e2e_header
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
