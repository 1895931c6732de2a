// Package redshift is the Redshift destination (type redshift): it does
// what Firehose's RedshiftDestinationConfiguration does — stage each
// batch in an S3 bucket, write a manifest listing it, and have the
// cluster load it with COPY … FROM '<manifest>' … MANIFEST — and makes the
// load exactly-once with a load ledger written in the COPY's transaction.
//
// # Configuration
//
//	destination:
//	  type: redshift
//	  dsn: ${REDSHIFT_DSN}          # postgres://user:pw@cluster:5439/dev?sslmode=require; never logged
//	  # dsn_file, password, password_file, tls, max_connections, connect_timeout: as for postgres
//	  table: analytics.events       # schema.table, or table (schema public); names exact (quoted)
//	  columns: [id, name, at]       # Firehose's DataTableColumns; optional with json, required with csv
//	  format: json                  # json (default) or csv
//	  copy_options: "TIMEFORMAT 'auto' TRUNCATECOLUMNS"   # Firehose's CopyOptions, appended to COPY
//	  iam_role: arn:aws:iam::123456789012:role/redshift-s3-read
//	  # or: access_key_id: ${KEY_ID}, secret_access_key: ${SECRET}, session_token: ${TOKEN}
//	  staging:                      # the bucket COPY reads (Firehose's S3Configuration)
//	    bucket: my-staging-bucket
//	    # region, endpoint, force_path_style, access_key_id, secret_access_key, session_token,
//	    # sse, storage_class, part_size, upload_concurrency: as for the s3 destination
//	    prefix: firehose/           # default ""; literal text only (no !{...} expressions)
//	    manifest_prefix: manifests/ # default
//	    errors_prefix: errors/      # default
//	  # ledger_table: analytics.sluice_load_ledger   # default: sluice_load_ledger in the table's schema
//	  # ledger_retention: 168h
//
// The connection keys are those of the postgres destination
// (pgload.ConnOptions). iam_role (an ARN, or a comma-separated chain) or
// the access keys — exactly one — are what COPY reads the staging bucket
// with; the staging block's own access keys (or the standard AWS chain)
// are what Sluice writes it with. The access keys are secrets: write them
// as ${ENV}; options, logs, errors and Describe show "[redacted]" (a COPY
// statement shown anywhere is RedactedCopySQL's, and server messages are
// scrubbed of the values). copy_options may not hold ';', NUL, comments,
// backslashes inside literals, or the parameters the destination writes
// itself (the format — FORMAT, JSON, CSV, DELIMITER, QUOTE, ... —, the
// compression, MANIFEST, the credentials); a JSONPaths file is therefore
// not available (JSON 'auto' only). A staging bucket in another region
// than the cluster needs REGION '<region>' in copy_options.
//
// # What is staged
//
// Every record must be one JSON object in UTF-8; others are refused before
// staging (code Redshift.InvalidRecord, error output type
// redshift-failed, permanent, reported in a *pipeline.PartialError) while
// the rest load — one bad record would otherwise fail the whole COPY.
//
// format json: each record compacted to one line, GZIP JSON lines; COPY
// reads them with FORMAT AS JSON 'auto' GZIP (keys matched to column
// names; Redshift's matching is case-sensitive and its names lower case).
//
// format csv: each record becomes one CSV row of columns, read from its
// top-level keys: a string quoted (quotes doubled; commas, quotes and
// line breaks inside are fine), a number as its JSON text, true/false, an
// object or array as its compact JSON text, quoted; null or a missing key
// an empty unquoted field. COPY reads them with CSV GZIP EMPTYASNULL:
// Redshift loads an empty field of a non-character column as NULL always,
// and of a CHAR/VARCHAR column as NULL only with EMPTYASNULL, so null
// stays NULL everywhere; a JSON "" is written as a quoted empty field so
// that it can stay an empty string.
//
// Keys (all UTC; the time is the arrival of the batch's oldest staged
// record; the uuid derives from the stream and the batch identity,
// prefix.ObjectUUID, so a redelivery overwrites instead of duplicating):
//
//	data      <prefix><yyyy/MM/dd/HH/><stream>-1-<yyyy-MM-dd-HH-mm-ss>-<uuid>.gz
//	manifest  <prefix><manifest_prefix><yyyy/MM/dd/HH/><stream>-1-<yyyy-MM-dd-HH-mm-ss>-<uuid>
//	given up  <prefix><errors_prefix><yyyy/MM/dd/HH/><stream>-1-<yyyy-MM-dd-HH-mm-ss>-<uuid>
//
// A manifest is {"entries":[{"url":"s3://bucket/<data key>","mandatory":true}]}.
// Data objects carry no Content-Encoding header, so readers get the GZIP
// bytes COPY expects. Objects are never deleted (as in Firehose).
//
// # One delivery, in order
//
//  1. Records are checked; refused ones are set aside.
//  2. The ledger table is created if missing (once per process).
//  3. The ledger is read, outside any transaction: a batch already loaded
//     is neither staged nor loaded again (counted in
//     sluice_warehouse_ledger_skipped_batches_total).
//  4. The data object is staged (streamed through GZIP into the store's
//     upload: bounded memory), then the manifest.
//  5. BEGIN; the batch is claimed in the ledger (LOCK on the ledger table,
//     look-up, INSERT: loads of one ledger are serialised, as Redshift
//     serialises COPYs into one table anyway; a concurrent load of the
//     same batch that committed first is found and this one skipped);
//     COPY … MANIFEST; SELECT pg_last_copy_count(); the ledger row gets
//     the row count; COMMIT.
//
// Every statement goes through pgx's simple query protocol
// (pgload.OpenOptions.SimpleProtocol; COPY takes no parameters, and the
// ledger's are interpolated by pgx). A COMMIT whose answer
// was lost leaves the outcome unknown: the batch is retried and the
// ledger tells. Ledger rows older than ledger_retention are deleted
// hourly. Limits are none: a batch is one object and one COPY.
//
// # Failures
//
// Every failure of the load is retryable, as Firehose retries every
// Redshift failure within the stream's retry duration (3600 s by default
// for Firehose's Redshift destination), with the code of pgload.Code:
// Redshift.TableNotFound (42P01, 3F000), Redshift.ColumnMismatch (42703),
// Redshift.IncorrectCopyOptions (42601), Redshift.AuthenticationFailed
// (28xxx), Redshift.ConnectionFailed (no SQLSTATE, 08xxx, other transient
// states), Redshift.DataLoadFailed (Redshift's XX000 "Load into table …
// failed. Check 'stl_load_errors' …", and SQLSTATE classes 22/23), and
// Redshift.PermissionDenied, Redshift.DatabaseNotFound,
// Redshift.DeliveryFailed for the rest. Errors about the table, the
// credentials or the data (pgload.Table class, which includes XX000) are
// also reported by Ready until a load succeeds. When records were refused
// in the same batch, the failure is a *pipeline.PartialError: the refused
// records permanent, the others retryable (the runner retries them as the
// next round of the batch). Staging errors keep the S3 store's
// classification and codes (S3.NoSuchBucket permanent, 5xx and throttling
// retryable, ...). COPY's MAXERROR in copy_options lets COPY skip rows;
// those are in stl_load_errors, logged as a row-count mismatch, not
// dead-lettered.
//
// When the runner gives up on a batch it calls Abandon (pipeline.Abandoner):
// the data object is staged again (so the manifest lists an object holding
// exactly the batch's loadable records) and the batch's manifest is
// written under errors_prefix, as Firehose writes the skipped batch's
// manifest under errors/ for a manual backfill:
//
//	COPY <table> [(<cols>)] FROM 's3://bucket/<prefix>errors/…' <credentials> MANIFEST <options>
//
// (CopySQL with that URL is the statement). A batch the ledger shows
// loaded gets no error manifest; when the ledger cannot be read (the
// cluster is down), the manifest is written.
//
// # Describe
//
// RedshiftDestinationDescription: ClusterJDBCURL jdbc:redshift://host:port/db
// and Username from the DSN (never the password), CopyCommand
// {DataTableName as configured, DataTableColumns, CopyOptions: everything
// after MANIFEST — the format, GZIP and copy_options, i.e. what a Firehose
// user writes in CopyOptions}, RetryOptions, the staging bucket as
// S3DestinationDescription (CompressionFormat GZIP), S3BackupMode Enabled
// with backup mode AllData (else Disabled) and the stream's error output as
// S3BackupDescription.
//
// # Not tried against Redshift
//
// Nothing here has run against a real Redshift cluster. The tests run
// against deploy/testpeers/redshift, a stand-in that forwards statements to
// PostgreSQL and implements COPY … MANIFEST from s3rver after Redshift's
// documentation. From that documentation only: the COPY syntax and
// parameter names; EMPTYASNULL's effect (whether a quoted "" in CSV stays an
// empty string on Redshift, as the stand-in does, is unverified); JSON
// 'auto' key matching; LOCK and SELECT pg_last_copy_count() inside a
// transaction; the XX000 text of load errors; Redshift's string literal
// rules (values with backslashes are refused at load time so that doubling
// quotes is enough whichever way the server reads backslashes); the 127-byte
// identifier limit; and that pgx's connection start-up, ping and simple
// protocol work with Redshift's PostgreSQL 8.0 front end.
package redshift
