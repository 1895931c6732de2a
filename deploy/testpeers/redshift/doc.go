// Package redshift is a stand-in for Amazon Redshift in tests and
// benchmarks: a server that speaks the PostgreSQL wire protocol to clients,
// forwards every statement to a real PostgreSQL, and implements Redshift's
// COPY ... FROM 's3://...' itself, reading manifests and data objects from
// an S3 server (s3rver in tests) and loading the rows into the real table
// inside the client's own transaction.
//
// What it implements follows Redshift's documented COPY syntax: IAM_ROLE,
// ACCESS_KEY_ID/SECRET_ACCESS_KEY/SESSION_TOKEN and CREDENTIALS
// authorization; MANIFEST (mandatory and optional entries) or a key prefix;
// JSON 'auto' / 'auto ignorecase', CSV and the default character-delimited
// text; GZIP, BZIP2 and ZSTD; the data conversion options (IGNOREHEADER,
// TIMEFORMAT epochs, TRUNCATECOLUMNS, BLANKSASNULL, EMPTYASNULL,
// ACCEPTINVCHARS, ...) and MAXERROR. Options it does not implement are
// refused with SQLSTATE 0A000, never ignored. Load errors answer Redshift's
// "Load into table 'X' failed. Check 'stl_load_errors' system table for
// details." (XX000) and abort the client's transaction as Redshift does.
//
// Redshift's load semantics are kept where they differ from PostgreSQL's:
// JSON 'auto' matches keys to column names case-sensitively ('auto
// ignorecase' does not); empty and blank fields of non-character columns
// load as NULL; CHAR/VARCHAR lengths are checked in bytes (TRUNCATECOLUMNS
// cuts to them); digits past a NUMERIC column's scale are truncated unless
// ROUNDEC; a missing mandatory manifest entry, an S3 error or too many bad
// rows (MAXERROR) fail the COPY with XX000. Rejected rows are listed in
// Server.Copies, not in an stl_load_errors table.
//
// Protocol limits: the simple query protocol only (extended-protocol
// messages are answered with 0A000); a COPY from S3 must be the only
// statement of its query message (other messages may hold several
// statements); the COPY command tag is "COPY" without a row count, as
// Redshift sends it, and SELECT pg_last_copy_count() answers the count.
package redshift
