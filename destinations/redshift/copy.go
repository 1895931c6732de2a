package redshift

import (
	"strings"

	"github.com/jackc/pgx/v5"
)

// redacted stands for a secret in statements shown in logs and errors.
const redacted = "[redacted]"

// CopySQL returns the COPY statement that loads the batch whose manifest
// is at manifestURL (s3://bucket/key):
//
//	COPY "schema"."table" ("a","b") FROM 's3://…' IAM_ROLE 'arn:…' MANIFEST FORMAT AS JSON 'auto' GZIP <copy_options>
//
// with ACCESS_KEY_ID '…' SECRET_ACCESS_KEY '…' [SESSION_TOKEN '…'] in
// place of IAM_ROLE when access keys are configured, and CSV GZIP
// EMPTYASNULL in place of FORMAT AS JSON 'auto' GZIP with format csv.
// Single quotes in literals are doubled. The text holds the secrets: send
// it, never show it (see RedactedCopySQL).
func (c *Config) CopySQL(manifestURL string) string {
	return c.copySQL(manifestURL, false)
}

// RedactedCopySQL is CopySQL with "[redacted]" in place of the access
// keys and session token, for logs and errors.
func (c *Config) RedactedCopySQL(manifestURL string) string {
	return c.copySQL(manifestURL, true)
}

func (c *Config) copySQL(manifestURL string, redact bool) string {
	var b strings.Builder
	b.WriteString("COPY ")
	b.WriteString(c.table.Sanitize())
	if len(c.columns) > 0 {
		b.WriteString(" (")
		for i, col := range c.columns {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(pgx.Identifier{col}.Sanitize())
		}
		b.WriteByte(')')
	}
	b.WriteString(" FROM ")
	b.WriteString(literal(manifestURL))
	secretLit := func(s string) string {
		if redact {
			return literal(redacted)
		}
		return literal(s)
	}
	if c.iamRole != "" {
		b.WriteString(" IAM_ROLE ")
		b.WriteString(literal(c.iamRole))
	} else {
		b.WriteString(" ACCESS_KEY_ID ")
		b.WriteString(secretLit(string(c.keyID)))
		b.WriteString(" SECRET_ACCESS_KEY ")
		b.WriteString(secretLit(string(c.secretKey)))
		if c.token != "" {
			b.WriteString(" SESSION_TOKEN ")
			b.WriteString(secretLit(string(c.token)))
		}
	}
	b.WriteString(" MANIFEST ")
	b.WriteString(c.loadOptions())
	return b.String()
}

// loadOptions are the parameters after MANIFEST: the format, the
// compression and copy_options (Firehose's CopyOptions as a whole).
func (c *Config) loadOptions() string {
	s := "FORMAT AS JSON 'auto' GZIP"
	if c.csv {
		s = "CSV GZIP EMPTYASNULL"
	}
	if c.copyOptions != "" {
		s += " " + c.copyOptions
	}
	return s
}

// literal quotes s as an SQL string literal. Compile keeps backslashes
// out of every value that goes into one, so doubling the quotes is enough
// whatever the server makes of backslashes.
func literal(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// scrub replaces the configured secrets in s with "[redacted]": server
// and driver messages are shown only after it.
func (c *Config) scrub(s string) string {
	for _, v := range []string{string(c.secretKey), string(c.token), string(c.keyID)} {
		if v != "" {
			s = strings.ReplaceAll(s, v, redacted)
		}
	}
	return s
}
