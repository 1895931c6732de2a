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
start_s3rver

e2e_header
s3_config "$work/gzip-json.yaml" gzip-json "$gzip_json"
e2e_run gzip-json "$work/gzip-json.yaml"
s3_config "$work/parquet.yaml" parquet "$parquet_snappy"
e2e_run parquet "$work/parquet.yaml"
echo "PutRecordBatch 500 x 1 KiB JSON records, concurrency 8, ${secs}s of load, s3rver on the same $(nproc) cores"
