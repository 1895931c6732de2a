#!/usr/bin/env bash
# Elasticsearch delivery rate second by second, during full-speed
# PutRecordBatch load (10 s) and during the drain after it, into
# VictoriaLogs: separates what delivery does alone from what it does while
# sharing the cores with ingest and the load generator (es.sh gives the
# end-to-end figure beside the ceiling).
# Usage: [INFLIGHT=4] [BATCH=1000] deploy/bench/es-phases.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
work=$(mktemp -d); port=4599; vlport=9439
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
go build -o $work/sluice ./cmd/sluice
deploy/testpeers/.bin/victoria-logs -storageDataPath $work/vl -httpListenAddr 127.0.0.1:$vlport -retentionPeriod=100y -futureRetention=100y -loggerLevel=WARN >/dev/null 2>&1 &
vlpid=$!
sleep 1
cat > $work/es.yaml <<YAML
listen: 127.0.0.1:$port
log: {level: error}
buffer: {max_bytes: 8GiB}
streams:
  bench:
    buffering: {size: 5, interval: 1}
    max_in_flight: ${INFLIGHT:-4}
    destination: {type: elasticsearch, addresses: ["http://127.0.0.1:$vlport/insert/elasticsearch"], index: bench, index_rotation: NoRotation, max_bulk_documents: ${BATCH:-1000}}
    error_output: {type: file, path: errors}
YAML
$work/sluice run -c $work/es.yaml --data-dir $work/data 2>/dev/null &
pid=$!
sleep 1
metric() { curl -s "http://127.0.0.1:$port/metrics" | awk -v m="$1" '$1 ~ "^"m"[{]" {s+=$2} END {printf "%.0f", s}'; }
$work/sluice load --endpoint http://127.0.0.1:$port --stream bench --payload json --record-size 1024 --concurrency 8 --duration 10s --warmup 0s >/dev/null &
lpid=$!
prev=0
for i in $(seq 1 30); do sleep 1; cur=$(metric sluice_delivery_records_total); b=$(metric sluice_buffer_backlog_bytes); echo "t=$i delivered/s=$((cur-prev)) backlog_MiB=$((b/1048576))"; prev=$cur; [ "$b" = 0 ] && [ $i -gt 11 ] && break; done
kill $pid $vlpid; wait 2>/dev/null || true
rm -rf $work
