#!/usr/bin/env bash
# Kinesis source → buffer → files, records/s, against the ceiling of a
# minimal GetRecords loop over the same stream, in one run:
#   0. kinesisceiling -fill puts RECORDS records of 1 KiB into a kinesalite
#      stream of SHARDS shards (once: every reader below reads all of it
#      from TRIM_HORIZON);
#   1. ceiling: kinesisceiling reads every shard with back-to-back
#      GetRecords calls (10000 records a call) until it has all RECORDS;
#   2. sluice: a KinesisStreamAsSource stream reads the same records from
#      TRIM_HORIZON (10000 a call, at most 5 calls a second per shard,
#      Kinesis's limit, which the ceiling ignores) into its disk buffer
#      (fsync per page) and delivers them as files, one record per line.
#      "buffer" is RECORDS ÷ the time from the daemon's start until
#      sluice_kinesis_read_records_total reaches RECORDS; "e2e" until
#      sluice_delivery_records_total does.
# Steps 1 and 2 alternate REPEAT times; compare the medians.
#
# Topology as es.sh: kinesalite on the CPU with fewer disk interrupts,
# the reader (ceiling or sluice) on the other; SHARED=1 runs both on both.
# Usage: [SHARED=1] deploy/bench/kinesis.sh [RECORDS] [SHARDS] [REPEAT]   (default 200000, 4, 3)
set -euo pipefail
cd "$(dirname "$0")/../.."
records=${1:-200000}
shards=${2:-4}
repeat=${3:-3}
work=$(mktemp -d)
kport=4597
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
go build -o "$work/sluice" ./cmd/sluice
go build -o "$work/kinesisceiling" ./deploy/bench/kinesisceiling
. deploy/bench/lib.sh
[ -f deploy/testpeers/node_modules/kinesalite/index.js ] || { echo "kinesalite missing: run deploy/install-test-deps.sh" >&2; exit 1; }

split_cpus kinesalite "the ceiling and sluice"

"${server_pin[@]}" node deploy/testpeers/kinesalite.cjs $kport >/dev/null 2>&1 &
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$kport/" && break; sleep 0.1; done
endpoint=http://127.0.0.1:$kport
echo "fill: $("$work/kinesisceiling" -endpoint $endpoint -stream bench -fill "$records" -shards "$shards" -size 1024)"

cat > "$work/sluice.yaml" <<YAML
listen: 127.0.0.1:$port
log: {level: warn}
buffer: {max_bytes: 4GiB}
streams:
  bench:
    type: KinesisStreamAsSource
    source:
      type: kinesis
      stream: bench
      endpoint: $endpoint
      access_key_id: bench
      secret_access_key: bench
      starting_position: TRIM_HORIZON
    buffering: {size: 64, interval: 1}
    destination: {type: file, path: out, append_newline: true}
YAML

printf '%-8s %10s %9s %12s %12s %9s\n' run records seconds records/s ratio cpu_us
declare -a ceil_rates buf_rates e2e_rates
for i in $(seq "$repeat"); do
  out=$("${client_pin[@]}" "$work/kinesisceiling" -endpoint $endpoint -stream bench -records "$records")
  c=$(sed -n 's/.*"records_per_sec":\([0-9.e+]*\).*/\1/p' <<<"$out")
  cs=$(sed -n 's/.*"seconds":\([0-9.e+]*\).*/\1/p' <<<"$out")
  ceil_rates+=("$c")
  printf '%-8s %10d %9.2f %12.0f %12s %9s\n' ceiling "$records" "$cs" "$c" 1.00 -

  rm -rf "$work/data"
  start=$(date +%s.%N)
  "${client_pin[@]}" "$work/sluice" run -c "$work/sluice.yaml" --data-dir "$work/data" &
  pid=$!
  tbuf=""
  while :; do
    now=$(date +%s.%N)
    if [ -z "$tbuf" ] && [ "$(metric sluice_kinesis_read_records_total)" = "$records" ]; then tbuf=$now; fi
    if [ "$(metric sluice_delivery_records_total)" = "$records" ]; then te2e=$now; break; fi
    sleep 0.05
  done
  cpu=$(cpu_seconds $pid)
  kill -TERM $pid; wait $pid || true
  for phase in buffer e2e; do
    t=$tbuf; [ $phase = e2e ] && t=$te2e
    r=$(awk -v n="$records" -v s="$start" -v e="$t" 'BEGIN{printf "%.0f", n/(e-s)}')
    [ $phase = buffer ] && buf_rates+=("$r") || e2e_rates+=("$r")
    printf '%-8s %10d %9.2f %12.0f %12.2f %9.2f\n' "$phase" "$records" "$(awk -v s="$start" -v e="$t" 'BEGIN{print e-s}')" "$r" \
      "$(awk -v a="$r" -v b="$c" 'BEGIN{print a/b}')" "$(awk -v c="$cpu" -v n="$records" 'BEGIN{print c*1e6/n}')"
  done
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mc=$(median "${ceil_rates[@]}") mb=$(median "${buf_rates[@]}") me=$(median "${e2e_rates[@]}")
echo "median records/s: ceiling $mc, sluice into the buffer $mb ($(awk -v a="$mb" -v b="$mc" 'BEGIN{printf "%.2f", a/b}')x), end to end $me ($(awk -v a="$me" -v b="$mc" 'BEGIN{printf "%.2f", a/b}')x)"
