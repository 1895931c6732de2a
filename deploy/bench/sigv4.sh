#!/usr/bin/env bash
# The cost of SigV4 verification: PutRecordBatch (500 x 1 KiB records,
# concurrency 8) into sluice with auth off and with auth on (every request
# signed by `sluice load --sign`, verified by the daemon: the body's
# SHA-256, the canonical request, four HMACs), alternating REPEAT times in
# one run, for each durability mode:
#   fsync: acknowledged after the group's fsync (the default);
#   os:    acknowledged after write(2): CPU-bound, where verification shows most.
# The load generator hashes each repeated body once (as the daemon cannot):
# the daemon's cost is what is measured. Compare the medians.
# Usage: deploy/bench/sigv4.sh [SECONDS] [REPEAT]   (default 10, 3)
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-10}
repeat=${2:-3}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
go build -o "$work/sluice" ./cmd/sluice
. deploy/bench/lib.sh
export AWS_ACCESS_KEY_ID=AKIDBENCHMARK0000001 AWS_SECRET_ACCESS_KEY=bench-secret-0123456789
config() { # DURABILITY AUTH(0|1)
  {
    echo "listen: 127.0.0.1:$port"
    echo "log: {level: warn}"
    echo "buffer: {max_bytes: 8GiB, durability: $1}"
    if [ "$2" = 1 ]; then
      echo "auth:"
      echo "  keys: [{access_key_id: $AWS_ACCESS_KEY_ID, secret_access_key: $AWS_SECRET_ACCESS_KEY}]"
    fi
    echo "streams:"
    echo "  bench:"
    echo "    buffering: {size: 5, interval: 5}"
    echo "    destination: {type: file, path: out}"
  } > "$work/sluice.yaml"
}
run() { # DURABILITY AUTH → records/s
  config "$1" "$2"
  rm -rf "$work/data"
  "$work/sluice" run -c "$work/sluice.yaml" --data-dir "$work/data" &
  local pid=$!
  for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/healthz" && break; sleep 0.1; done
  local sign=(); [ "$2" = 1 ] && sign=(--sign)
  "$work/sluice" load --endpoint "http://127.0.0.1:$port" --stream bench --concurrency 8 --records 500 --record-size 1024 \
    --duration "${secs}s" --warmup 2s "${sign[@]}" --json > "$work/load.json"
  kill -TERM $pid; wait $pid || true
  grep -q '"failed_requests": 0' "$work/load.json" || { echo "failed requests:" >&2; cat "$work/load.json" >&2; exit 1; }
  sed -n 's/.*"records_per_sec": \([0-9.]*\).*/\1/p' "$work/load.json"
}
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
printf '%-8s %6s %12s %12s %7s\n' durability round auth_off auth_on ratio
for dur in fsync os; do
  offs=() ons=()
  for i in $(seq "$repeat"); do
    off=$(run "$dur" 0); on=$(run "$dur" 1)
    offs+=("$off"); ons+=("$on")
    printf '%-8s %6d %12.0f %12.0f %7.3f\n' "$dur" "$i" "$off" "$on" "$(awk -v a="$on" -v b="$off" 'BEGIN{print a/b}')"
  done
  mo=$(median "${offs[@]}") mn=$(median "${ons[@]}")
  printf '%-8s %6s %12.0f %12.0f %7.3f\n' "$dur" median "$mo" "$mn" "$(awk -v a="$mn" -v b="$mo" 'BEGIN{print a/b}')"
done
