#!/usr/bin/env bash
# PutRecordBatch → Elasticsearch _bulk documents/s end to end, into
# VictoriaLogs (a real server of the _bulk protocol), against the ceiling
# of posting the same documents to it directly, in one run:
#   1. ceiling: deploy/bench/esceiling posts N clickstream documents (the
#      generator of `sluice load --payload json`, 1 KiB) in bulk requests
#      of BATCH documents, 4 at a time (sluice's max_in_flight);
#   2. sluice → elasticsearch destination, bulk requests of BATCH
#      documents, max_in_flight 4.
# The sluice run offers full-speed load (500 x 1 KiB JSON records per
# call, concurrency 8) for SECONDS, then waits until every acknowledged
# record is indexed; its figure is documents ÷ (last delivery − load
# start). The ceiling posts as many documents as sluice delivered. Both
# print the CPU time per document of each process (sluice, the load
# generator, VictoriaLogs; the ceiling's client, VictoriaLogs): on a
# 2-core machine the ratio is mostly how much CPU sluice and its load
# generator take from the server.
# Usage: deploy/bench/es.sh [SECONDS] [BATCH]   (default 15, 1000)
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-15}
batch=${2:-1000}
work=$(mktemp -d)
vlport=9439
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
go build -o "$work/sluice" ./cmd/sluice
go build -o "$work/esceiling" ./deploy/bench/esceiling
. deploy/bench/lib.sh
vl=deploy/testpeers/.bin/victoria-logs
[ -x "$vl" ] || { echo "VictoriaLogs missing: run deploy/install-test-deps.sh" >&2; exit 1; }
start_vl() {
  rm -rf "$work/vl"
  "$vl" -storageDataPath "$work/vl" -httpListenAddr "127.0.0.1:$vlport" -retentionPeriod=100y -futureRetention=100y \
    -insert.maxLineSizeBytes=2MiB -loggerLevel=WARN >/dev/null 2>&1 &
  vlpid=$!
  for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$vlport/health" && break; sleep 0.1; done
}
stop_vl() { kill $vlpid; wait $vlpid 2>/dev/null || true; }

cat > "$work/es.yaml" <<YAML
listen: 127.0.0.1:$port
log: {level: warn}
buffer: {max_bytes: 8GiB}
streams:
  bench:
    buffering: {size: 5, interval: 1}
    max_in_flight: 4
    destination:
      type: elasticsearch
      addresses: ["http://127.0.0.1:$vlport/insert/elasticsearch"]
      index: bench
      index_rotation: NoRotation
      max_bulk_documents: $batch
    error_output: {type: file, path: errors}
YAML

e2e_header
start_vl
peer_pid=$vlpid
row=$(e2e_run sluice "$work/es.yaml"); echo "$row"
stop_vl
n=$(awk '{print $2}' <<<"$row")

# The ceiling's ids are as long as sluice's record ids (a 16-digit log id,
# "-", a 16-digit position: 33 characters), so both send the server the
# same bytes per document: its CPU per document grows with the id.
idprefix=0123456789abcdef-
idprefix+=$(printf '%0*d' $((33 - ${#idprefix} - ${#n})) 0)
start_vl
vl0=$(cpu_seconds $vlpid)
/usr/bin/time -f %U+%S -o "$work/ceiling.cpu" "$work/esceiling" -url "http://127.0.0.1:$vlport/insert/elasticsearch" -docs "$n" -record-size 1024 \
  -batch "$batch" -concurrency 4 -action create -id-prefix "$idprefix" > "$work/ceiling.json"
vl1=$(cpu_seconds $vlpid)
stop_vl
ceiling=$(sed -n 's/.*"docs_per_sec": *\([0-9.]*\).*/\1/p' "$work/ceiling.json")

printf '\nceiling (esceiling, %d documents, bulk %d, 4 at a time): %.0f docs/s, CPU µs/doc: client %.2f, VictoriaLogs %.2f\n' \
  "$n" "$batch" "$ceiling" "$(awk -F+ -v n="$n" '{print ($1+$2)*1e6/n}' "$work/ceiling.cpu")" "$(awk -v a="$vl0" -v b="$vl1" -v n="$n" 'BEGIN{print (b-a)*1e6/n}')"
awk -v c="$ceiling" '{printf "%-8s %10.0f docs/s  %.2fx the ceiling\n", $1, $4, $4/c}' <<<"$row"
