// Package postgres is the Postgres destination (type postgres): it loads
// each batch into a table with the COPY protocol, in one transaction with
// the batch's row in a load ledger, so that every record loads exactly
// once — a batch delivered again after a crash, or after a COMMIT whose
// answer was lost, is recognised and skipped.
//
// # Configuration
//
//	destination:
//	  type: postgres
//	  dsn: ${PG_DSN}                # postgres://user@host:5432/db?sslmode=verify-full, or key=value; never logged
//	  # dsn_file: /run/secrets/pg   # instead of dsn
//	  # password: ${PG_PASSWORD}    # replaces the DSN's password (or password_file)
//	  # tls: {mode: verify-full, ca_file: ca.pem, cert_file: c.pem, key_file: c.key, server_name: db}
//	  # max_connections: 4          # the pool; each load in flight holds one
//	  # connect_timeout: 10s
//	  table: analytics.events       # schema.table (or table: schema public); names exact (quoted)
//	  mode: insert                  # or upsert, with keys
//	  # keys: [id]
//	  # columns:                    # without columns: one jsonb column (data_column) with the whole record
//	  #   - {name: id, path: id, type: bigint, required: true}
//	  #   - {name: at, path: meta.time, type: timestamptz, format: auto}
//	  # data_column: data
//	  record_id_column: record_id   # the Firehose record ID (text)
//	  arrival_time_column: arrived  # the record's approximate arrival time (timestamptz)
//	  create_table: true            # create schema and table from the mapping when missing
//	  # ledger_table: analytics.sluice_load_ledger
//	  # ledger_retention: 168h
//
// The column mapping (Column) names, for each column, where its value is
// in the JSON record and its type; see Column and Mapping.
//
// # Exactly once
//
// A load is one transaction: the ledger row for (stream, table, batch key)
// is inserted first (INSERT … ON CONFLICT DO NOTHING, so a second load of
// the same batch waits for the first and then finds it), then the rows are
// copied, then the ledger row gets the outcome, then COMMIT. The batch key
// is the batch identity with its first record's ID (pgload.BatchKey),
// which carries the buffer's log identity: a buffer that starts again from
// position zero never reuses a key. Ledger rows are deleted after
// ledger_retention.
//
// # Bad rows
//
// When the server refuses a row (SQLSTATE class 22 — a bad value, a value
// too long, text with NUL —, class 23 — a NOT NULL, CHECK, UNIQUE or
// FOREIGN KEY violation —, or 54000), the load rolls back to a savepoint
// and loads the rows again in parts, each in its own savepoint, until each
// bad row is alone (when the error names its COPY line, the parts are the
// rows before, the row, the rows after; otherwise halves). The good rows
// commit once; the bad ones are reported to the runner as permanent
// failures with code Postgres.DataLoadFailed and the server's SQLSTATE and
// message, and go to the error output (type postgres-failed). Deferrable
// constraints are checked at their row (SET CONSTRAINTS ALL IMMEDIATE).
// Records that cannot be mapped (not JSON, a value of the wrong type) are
// refused before the database sees them, code Postgres.InvalidRecord. The
// ledger keeps the refused rows, so a redelivery reports them again.
//
// Errors about the table (42P01 missing table, 42703 missing column, 42501
// permission, 28xxx authentication, and any other SQLSTATE) are never
// isolated row by row: the batch is retried within the stream's retry
// duration and /readyz reports the error until a load succeeds. A broken
// connection and transient server states (08xxx, 40001, 40P01, 53xxx,
// 57P01–57P03, 55P03, 57014) are retried.
//
// # Upsert
//
// mode: upsert copies the rows into a temporary table, then runs INSERT …
// SELECT DISTINCT ON (keys) … ORDER BY keys, record order DESC ON CONFLICT
// (keys) DO UPDATE: the last record of a key in a batch wins, and the
// "ON CONFLICT DO UPDATE command cannot affect row a second time" failure
// of upserting two rows with one key cannot happen. The table needs a
// unique index or constraint on exactly the keys (create_table makes one).
// An upsert stream loads one batch at a time, in order (max_in_flight is
// at most 1), so an older batch — retried, or slower — never overwrites a
// newer one.
//
// # Metrics
//
// Besides the runner's sluice_delivery_* families (Firehose's
// DeliveryToRedshift.Records, .Bytes, .Success, DataFreshness), labelled
// destination="postgres": sluice_warehouse_rejected_rows_total by SQLSTATE
// class, sluice_warehouse_isolation_loads_total (bisect rounds),
// sluice_warehouse_ledger_skipped_batches_total and
// sluice_warehouse_load_errors_total by class and code.
package postgres
