# Shared by the end-to-end benchmark scripts (s3.sh, wasm.sh); sourced
# after they set $work (a scratch directory holding the sluice binary) and
# $secs (seconds of load). The daemon listens on $port.
port=${port:-4599}

# metric NAME: the sum of a Prometheus metric's series.
metric() { curl -s "http://127.0.0.1:$port/metrics" | awk -v m="$1" '$1 ~ "^"m"[{]" {s+=$2} END {printf "%.0f", s}'; }

e2e_header() {
  printf '%-14s %10s %8s %12s %9s %9s %9s %6s %9s %9s %9s\n' run delivered seconds records/s MiB/s p99_ms rss_MiB dead \
    sluice_us load_us peer_us
}

# cpu_seconds PID: user+system CPU seconds the process has used so far.
cpu_seconds() { awk -v t="$(getconf CLK_TCK)" '{sub(/.*\) /, ""); printf "%.2f", ($12+$13)/t}' "/proc/$1/stat"; }

# e2e_run NAME CONFIG: runs sluice on CONFIG (stream "bench"), offers
# PutRecordBatch load (500 x 1 KiB JSON records, concurrency 8) for $secs,
# waits until the backlog is delivered and prints one row: records
# delivered / time from the first request until the last delivery, and the
# CPU time per record (µs) of sluice, of the load generator and of the
# destination's server when $peer_pid names it. $client_cpus, when set,
# pins sluice and the load generator to those CPUs (taskset -c).
e2e_run() {
  local name=$1 cfg=$2
  rm -rf "$work/data"
  local pin=()
  [ -n "${client_cpus:-}" ] && pin=(taskset -c "$client_cpus")
  "${pin[@]}" "$work/sluice" run -c "$cfg" --data-dir "$work/data" &
  local pid=$!
  for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/healthz" && break; sleep 0.1; done
  local start end delivered dead rss p99 cpu1 peer0=0 peer1=0
  [ -n "${peer_pid:-}" ] && peer0=$(cpu_seconds "$peer_pid")
  start=$(date +%s.%N)
  "${pin[@]}" /usr/bin/time -f %U+%S -o "$work/$name.load.cpu" "$work/sluice" load --endpoint "http://127.0.0.1:$port" --stream bench --payload json --record-size 1024 \
    --concurrency 8 --duration "${secs}s" --warmup 0s ${rate:+--rate "$rate"} --pid $pid --json > "$work/$name.load.json"
  while [ "$(metric sluice_buffer_backlog_bytes)" != 0 ]; do sleep 0.2; done
  end=$(date +%s.%N)
  cpu1=$(cpu_seconds $pid)
  [ -n "${peer_pid:-}" ] && peer1=$(cpu_seconds "$peer_pid")
  delivered=$(metric sluice_delivery_records_total)
  dead=$(metric sluice_dead_letter_records_total)
  rss=$(awk '/VmHWM/{printf "%.1f", $2/1024}' /proc/$pid/status)
  kill -TERM $pid; wait $pid || true
  p99=$(sed -n 's/.*"p99_ms": \([0-9.]*\).*/\1/p' "$work/$name.load.json")
  local lcpu; lcpu=$(awk -F+ '{printf "%.2f", $1+$2}' "$work/$name.load.cpu")
  awk -v n="$name" -v d="$delivered" -v s="$start" -v e="$end" -v r="$rss" -v p="$p99" -v x="$dead" \
    -v c="$cpu1" -v l="$lcpu" -v q="$(awk -v a="$peer0" -v b="$peer1" 'BEGIN{print b-a}')" \
    'BEGIN{t=e-s; printf "%-14s %10d %8.1f %12.0f %9.1f %9.2f %9.1f %6d %9.2f %9.2f %9.2f\n", n, d, t, d/t, d*1024/t/1048576, p, r, x, c*1e6/d, l*1e6/d, q*1e6/d}'
}

# The S3 benchmarks' destinations (s3.sh, s3cpu.sh): stream "bench" into
# bucket "bench" of the s3rver on $s3port, 64 MiB batches, 256 MiB soft
# memory limit. s3_config FILE PREFIX FORMAT writes the config, FORMAT
# being $gzip_json or $parquet_snappy (the destination's format keys).
gzip_json="      compression: GZIP
      append_newline: true"
parquet_snappy="      format:
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
s3_config() {
  cat > "$1" <<YAML
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
      prefix: $2/
$3
YAML
}

# start_s3rver: s3rver with bucket "bench" on $s3port, storing under $work.
start_s3rver() {
  node --openssl-legacy-provider deploy/testpeers/node_modules/s3rver/bin/s3rver.js -d "$work/s3" -a 127.0.0.1 -p $s3port --configure-bucket bench --silent &
  for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$s3port/" && break; sleep 0.1; done
}

# split_cpus SERVER CLIENTS: unless SHARED=1 (or one CPU), pins the server
# to the CPU that has taken fewer block-device interrupts (virtio, NVMe,
# SCSI) and its clients to the other: the clients write the buffer, and a
# disk's interrupts (often not movable in a VM) would otherwise land on the
# server's core and slow it. Sets server_pin, client_pin (taskset commands
# to prefix) and client_cpus (for e2e_run), and says what it chose.
split_cpus() {
  server_pin=() client_pin=()
  if [ "${SHARED:-0}" != 1 ] && [ "$(nproc)" -ge 2 ]; then
    local server_cpu client_cpu
    server_cpu=$(awk 'NR == 1 {n = NF} /virtio[0-9]*-req|nvme|ahci|sd[a-z]/ {for (i = 2; i <= n + 1; i++) s[i] += $i}
      END {best = 0; for (i = 3; i <= n + 1; i++) if (s[i] < s[best + 2]) best = i - 2; print best}' /proc/interrupts)
    client_cpu=$(( server_cpu == 0 ? 1 : 0 ))
    server_pin=(taskset -c "$server_cpu") client_pin=(taskset -c "$client_cpu") client_cpus=$client_cpu
    echo "topology: $1 on CPU $server_cpu; $2 on CPU $client_cpu"
  else
    echo "topology: every process on every CPU (SHARED)"
  fi
}
