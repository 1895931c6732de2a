#!/usr/bin/env bash
# Side-by-side ingest benchmark on this machine, in one run:
#   1. refserver -mode discard  (decode + base64 + discard: the CPU ceiling)
#   2. refserver -mode stdjson  (encoding/json decode + discard)
#   3. refserver -mode fsync    (append + one fsync per group: the durability ceiling)
#   4. sluice, fsync durability, delivering to a local directory
#   5. sluice with its destination stopped until a 1 GiB backlog waits (peak RSS)
# Each load: PutRecordBatch of 500 x 1 KiB records at concurrency 8.
# Usage: deploy/bench/run.sh [SECONDS]   (default 15)
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-15}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
go build -o "$work/sluice" ./cmd/sluice
go build -o "$work/refserver" ./deploy/bench/refserver
. deploy/bench/lib.sh
load() { "$work/sluice" load --endpoint "http://127.0.0.1:$port" --stream "$1" --concurrency 8 \
  --records 500 --record-size 1024 --duration "${secs}s" --warmup 2s --pid "$2" --json ${3:+--rate $3}; }
wait_up() { for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/" -X POST -d '{}' && return 0; sleep 0.1; done; return 1; }
results=()
for mode in discard stdjson fsync; do
  "$work/refserver" -mode "$mode" -listen "127.0.0.1:$port" -file "$work/ref.log" 2>/dev/null &
  pid=$!; wait_up
  echo "== refserver -mode $mode" >&2
  results+=("refserver-$mode $(load bench $pid | tee /dev/stderr | tr -d '\n ')")
  kill $pid; wait $pid 2>/dev/null || true; rm -f "$work/ref.log"
done

cat > "$work/sluice.yaml" <<YAML
listen: 127.0.0.1:$port
log: {level: warn}
buffer: {max_bytes: 4GiB}
streams:
  bench:
    buffering: {size: 5, interval: 5}
    destination: {type: file, path: out}
YAML
"$work/sluice" run -c "$work/sluice.yaml" --data-dir "$work/data" &
pid=$!; sleep 0.5; wait_up
echo "== sluice (fsync, file destination)" >&2
results+=("sluice $(load bench $pid | tee /dev/stderr | tr -d '\n ')")
# Delivery must keep up, not just intake: the backlog left when the load
# stops, and the records delivered by then.
end_backlog=$(metric sluice_buffer_backlog_bytes)
end_delivered=$(metric sluice_delivery_records_total)
end_incoming=$(metric sluice_incoming_records_total)
kill -TERM $pid; wait $pid || true
rm -rf "$work/data"

# Sustained: a fixed offered rate that delivery must keep up with (the
# backlog at the end stays within a few batches).
rate=${SUSTAIN_RATE:-200000}
"$work/sluice" run -c "$work/sluice.yaml" --data-dir "$work/data" &
pid=$!; sleep 0.5; wait_up
echo "== sluice at an offered $rate records/s" >&2
results+=("sluice@$rate $(load bench $pid $rate | tee /dev/stderr | tr -d '\n ')")
sus_backlog=$(metric sluice_buffer_backlog_bytes)
sus_delivered=$(metric sluice_delivery_records_total)
sus_incoming=$(metric sluice_incoming_records_total)
kill -TERM $pid; wait $pid || true
rm -rf "$work/data"

# Stopped destination: once the daemon runs, its output directory is
# replaced by a regular file, so every delivery (and dead-letter write)
# fails with ENOTDIR and is retried while the backlog grows on disk.
mkdir -p "$work/dest"
cat > "$work/stopped.yaml" <<YAML
listen: 127.0.0.1:$port
log: {level: error}
buffer: {max_bytes: 4GiB}
shutdown_timeout: 1s
streams:
  bench:
    buffering: {size: 5, interval: 1}
    destination: {type: file, path: $work/dest/out}
YAML
"$work/sluice" run -c "$work/stopped.yaml" --data-dir "$work/data" &
pid=$!; sleep 0.5; wait_up
rm -rf "$work/dest"; touch "$work/dest"
echo "== sluice, destination stopped, until a 1 GiB backlog" >&2
# 1 GiB of 1 KiB records at ~100+ MiB/s: run until the backlog metric passes 1 GiB.
"$work/sluice" load --endpoint "http://127.0.0.1:$port" --stream bench --concurrency 8 --duration 60s --warmup 0s --pid $pid --json > "$work/stopped.json" &
lp=$!
while kill -0 $lp 2>/dev/null; do
  backlog=$(curl -s "http://127.0.0.1:$port/metrics" | awk '/^sluice_buffer_backlog_bytes\{/{print $2}')
  if [ -n "$backlog" ] && awk "BEGIN{exit !($backlog > 1073741824)}"; then kill -INT $lp; break; fi
  sleep 1
done
wait $lp || true
rss=$(awk '/VmHWM/{print $2/1024}' /proc/$pid/status)
echo "backlog bytes: $backlog, sluice peak RSS: ${rss} MiB" >&2
kill -TERM $pid; wait $pid || true

echo
echo "PutRecordBatch 500 x 1 KiB, concurrency 8, ${secs}s per run, $(nproc) cores"
printf '%-22s %12s %9s %9s %9s %9s\n' server records/s MiB/s p50_ms p99_ms rss_MiB
ceiling=""
for r in "${results[@]}"; do
  name=${r%% *}; js=${r#* }
  get() { echo "$js" | sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p"; }
  printf '%-22s %12.0f %9.1f %9.2f %9.2f %9.1f\n' "$name" "$(get records_per_sec)" "$(get mib_per_sec)" "$(get p50_ms)" "$(get p99_ms)" "$(get peak_rss_mib)"
  [ "$name" = refserver-fsync ] && ceiling=$(get records_per_sec)
  [ "$name" = sluice ] && sl=$(get records_per_sec)
done
echo "sluice at the end of its load: $end_incoming records in, $end_delivered delivered, backlog $(awk "BEGIN{printf \"%.1f\", $end_backlog/1048576}") MiB"
echo "sluice at an offered $rate/s: $sus_incoming records in, $sus_delivered delivered, backlog $(awk "BEGIN{printf \"%.1f\", $sus_backlog/1048576}") MiB at the end"
echo "sluice / durability ceiling: $(awk "BEGIN{printf \"%.2f\", $sl/$ceiling}")"
echo "stopped destination: backlog $(awk "BEGIN{printf \"%.2f\", $backlog/1073741824}") GiB, peak RSS ${rss} MiB"
