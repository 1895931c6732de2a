#!/usr/bin/env bash
# PutRecordBatch → Postgres rows/s end to end, against the ceiling of
# loading the same rows straight from a file with psql's \copy, in one run:
#   1. sluice → postgres, the whole record in a jsonb column (the default);
#   2. sluice → postgres, a 10-column mapping (text, timestamptz, bigint,
#      numeric, text[], jsonb, nested paths);
#   3. ceiling: the rows run 1 loaded, exported to a file, loaded again
#      with `psql -c "\copy … FROM file"` into a fresh table;
#   4. for comparison: the same rows (the first 100,000) as plain INSERT
#      statements (one per row, one transaction), through psql.
# psql's \copy is one connection in text format; sluice loads up to
# max_in_flight (4) batches at once in COPY's binary format.
# Each sluice run offers full-speed load (500 x 1 KiB JSON records per
# call, concurrency 8) for SECONDS, then waits until every acknowledged
# record is loaded; its figure is rows loaded ÷ (last load − load start).
# Runs against the PostgreSQL server at $PG_DSN (default the local one),
# in a schema of its own that it drops at the end.
# Usage: deploy/bench/postgres.sh [SECONDS]   (default 15)
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-15}
dsn=${PG_DSN:-postgres://root@127.0.0.1:5432/test?sslmode=disable}
schema=sluice_bench_$$
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; psql -q "$dsn" -c "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
go build -o "$work/sluice" ./cmd/sluice
. deploy/bench/lib.sh
psql -q "$dsn" -c "CREATE SCHEMA $schema"

config() { # name, destination keys
  cat > "$work/$1.yaml" <<YAML
listen: 127.0.0.1:$port
log: {level: warn}
buffer: {max_bytes: 8GiB}
streams:
  bench:
    buffering: {size: 5, interval: 1}
    destination:
      type: postgres
      dsn: "$dsn"
      table: $schema.$1
      create_table: true
      record_id_column: record_id
$2
    error_output: {type: file, path: errors}
YAML
  echo "$work/$1.yaml"
}
mapping="      columns:
        - {name: event_id, type: text, required: true}
        - {name: ts, type: timestamptz}
        - {name: user_id, type: bigint}
        - {name: country, type: text}
        - {name: amount, type: numeric}
        - {name: tags, type: 'text[]'}
        - {name: os, path: device.os, type: text}
        - {name: version, path: device.version, type: text}
        - {name: device, type: jsonb}
        - {name: note, type: text}"

rows=()
e2e_header
row=$(e2e_run jsonb "$(config jsonb "")"); echo "$row"; rows+=("$row")
row=$(e2e_run mapped "$(config mapped "$mapping")"); echo "$row"; rows+=("$row")

# The ceiling: the same rows, from a file, with \copy.
n=$(psql -qtA "$dsn" -c "SELECT count(*) FROM $schema.jsonb")
psql -q "$dsn" -c "\\copy (SELECT data, record_id FROM $schema.jsonb) TO '$work/rows.tsv'"
psql -q "$dsn" -c "CREATE TABLE $schema.ceiling (data jsonb, record_id text NOT NULL UNIQUE)"
t0=$(date +%s.%N)
psql -q "$dsn" -c "\\copy $schema.ceiling (data, record_id) FROM '$work/rows.tsv'"
t1=$(date +%s.%N)
ceiling=$(awk -v n="$n" -v a="$t0" -v b="$t1" 'BEGIN{printf "%.0f", n/(b-a)}')

# Plain INSERTs of the same rows (the first 100,000), one statement per
# row, one transaction.
ni=$(( n < 100000 ? n : 100000 ))
psql -q "$dsn" -c "CREATE TABLE $schema.inserts (data jsonb, record_id text NOT NULL UNIQUE)"
psql -qtA "$dsn" -c "SELECT format('INSERT INTO $schema.inserts (data, record_id) VALUES (%L, %L);', data, record_id) FROM $schema.jsonb LIMIT $ni" > "$work/inserts.sql"
t0=$(date +%s.%N)
psql -q -1 "$dsn" -f "$work/inserts.sql" >/dev/null
t1=$(date +%s.%N)
inserts=$(awk -v n="$ni" -v a="$t0" -v b="$t1" 'BEGIN{printf "%.0f", n/(b-a)}')

printf '\nceiling (psql \\copy of the same %d rows from a file): %.0f rows/s\n' "$n" "$ceiling"
for r in "${rows[@]}"; do
  awk -v c="$ceiling" '{printf "%-8s %10.0f rows/s  %.2fx the ceiling\n", $1, $4, $4/c}' <<<"$r"
done
awk -v c="$ceiling" -v i="$inserts" 'BEGIN{printf "%-8s %10.0f rows/s  %.2fx the ceiling (psql, one INSERT per row, one transaction)\n", "inserts", i, i/c}'
