#!/usr/bin/env bash
# PutRecordBatch → Elasticsearch _bulk documents/s end to end, into
# VictoriaLogs (a real server of the _bulk protocol), against the ceiling
# of posting the same documents to it directly, in one run:
#   1. ceiling: deploy/bench/esceiling posts clickstream documents (the
#      generator of `sluice load --payload json`, 1 KiB, in its order) in
#      bulk requests of BATCH documents, 8 at a time, for about SECONDS;
#   2. sluice, offered the ceiling's rate: `sluice load` puts records at the
#      rate the server took in step 1 for SECONDS (producers offering what
#      the cluster can take), sluice's elasticsearch destination delivers
#      them in bulk requests of BATCH documents, max_in_flight 8;
#   3. sluice, offered unlimited load: the loader puts as fast as sluice
#      answers; the buffer absorbs what delivery cannot take yet (a burst:
#      ingest then shares the CPU with delivery).
# A sluice figure is documents ÷ (last delivery − load start): every
# acknowledged record is indexed when it is taken. Every row prints the
# CPU time per document of each process (sluice, its load generator,
# VictoriaLogs; the ceiling's client, VictoriaLogs).
#
# Topology. By default the server has one CPU and everything that feeds it
# (sluice and its load generator; the ceiling's client) the other, as a
# cluster runs on machines of its own: the ceiling is what the server takes
# on its core, and the ratio says how close sluice comes to it. The server
# gets the CPU that takes fewer of the disk's interrupts: the client side
# writes the buffer, and a block device's interrupts (often not movable in
# a VM) would otherwise land on the server's core and slow it (VictoriaLogs
# took ~14% more CPU per document beside a disk writer than alone).
# SHARED=1 runs every process on both CPUs instead: then the ratio is
# mostly how much CPU sluice and its load generator take from the server.
# Usage: [SHARED=1] deploy/bench/es.sh [SECONDS] [BATCH]   (default 20, 1000)
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-20}
batch=${2:-1000}
work=$(mktemp -d)
vlport=9439
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
go build -o "$work/sluice" ./cmd/sluice
go build -o "$work/esceiling" ./deploy/bench/esceiling
. deploy/bench/lib.sh
vl=deploy/testpeers/.bin/victoria-logs
[ -x "$vl" ] || { echo "VictoriaLogs missing: run deploy/install-test-deps.sh" >&2; exit 1; }

split_cpus VictoriaLogs "sluice, its load generator and the ceiling's client"

start_vl() {
  rm -rf "$work/vl"
  "${server_pin[@]}" "$vl" -storageDataPath "$work/vl" -httpListenAddr "127.0.0.1:$vlport" -retentionPeriod=100y -futureRetention=100y \
    -insert.maxLineSizeBytes=2MiB -loggerLevel=WARN >/dev/null 2>&1 &
  vlpid=$!
  for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$vlport/health" && break; sleep 0.1; done
}
# stop_vl also flushes what the run wrote, so that the next run does not
# pay for its writeback.
stop_vl() { kill $vlpid; wait $vlpid 2>/dev/null || true; rm -rf "$work/vl" "$work/data"; sync; sleep 2; }

# The ceiling first: its rate is what sluice is offered. Its ids are as
# long as sluice's record ids (a 16-digit log id, "-", a 16-digit
# position: 33 characters), so both send the server the same bytes per
# document.
n=$((secs * 200000))
start_vl
vl0=$(cpu_seconds $vlpid)
"${client_pin[@]}" /usr/bin/time -f %U+%S -o "$work/ceiling.cpu" "$work/esceiling" -url "http://127.0.0.1:$vlport/insert/elasticsearch" \
  -docs "$n" -record-size 1024 -batch "$batch" -concurrency 8 -action create -id-prefix 0123456789abcdef-0000000000 > "$work/ceiling.json"
vl1=$(cpu_seconds $vlpid)
stop_vl
ceiling=$(sed -n 's/.*"docs_per_sec": *\([0-9.]*\).*/\1/p' "$work/ceiling.json")
printf 'ceiling (esceiling, %d documents, bulk %d, 8 at a time): %.0f docs/s, CPU µs/doc: client %.2f, VictoriaLogs %.2f\n\n' \
  "$n" "$batch" "$ceiling" "$(awk -F+ -v n="$n" '{print ($1+$2)*1e6/n}' "$work/ceiling.cpu")" "$(awk -v a="$vl0" -v b="$vl1" -v n="$n" 'BEGIN{print (b-a)*1e6/n}')"

cat > "$work/es.yaml" <<YAML
listen: 127.0.0.1:$port
log: {level: warn}
buffer: {max_bytes: 8GiB}
streams:
  bench:
    buffering: {size: 5, interval: 1}
    max_in_flight: 8
    destination:
      type: elasticsearch
      addresses: ["http://127.0.0.1:$vlport/insert/elasticsearch"]
      index: bench
      index_rotation: NoRotation
      max_bulk_documents: $batch
    error_output: {type: file, path: errors}
YAML

e2e_header
rows=()
for offered in "$(printf '%.0f' "$ceiling")" 0; do
  start_vl
  peer_pid=$vlpid rate=$offered
  name=sluice@ceiling
  [ "$offered" = 0 ] && name=sluice@max
  row=$(e2e_run "$name" "$work/es.yaml"); echo "$row"; rows+=("$row")
  stop_vl
done
echo
for row in "${rows[@]}"; do
  awk -v c="$ceiling" '{printf "%-14s %10.0f docs/s  %.2fx the ceiling\n", $1, $4, $4/c}' <<<"$row"
done
