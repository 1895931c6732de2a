package redshift

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/pipeline"
)

const testRole = "arn:aws:iam::123456789012:role/r"

// validOptions are options Compile accepts: JSON, IAM role, a staging
// bucket.
func validOptions() Options {
	o := DefaultOptions()
	o.DSN = "postgres://loader:s3cr3t-pw@cluster.example:5439/dev?sslmode=require"
	o.Table = "events"
	o.IAMRole = testRole
	o.Staging.Bucket = "staging-bucket"
	return o
}

// optionKeys are the keys of the option errors joined in err.
func optionKeys(t *testing.T, err error) []string {
	t.Helper()
	var list []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	} else if err != nil {
		list = []error{err}
	}
	var out []string
	for _, e := range list {
		var oe *pipeline.OptionError
		if !errors.As(e, &oe) {
			t.Errorf("error %q is not a *pipeline.OptionError", e)
			continue
		}
		out = append(out, oe.Key)
	}
	return out
}

func TestCompileDefaults(t *testing.T) {
	c, err := Compile(validOptions())
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	if got := c.table.Sanitize(); got != `"public"."events"` {
		t.Errorf("table %s, want \"public\".\"events\"", got)
	}
	if got := c.ledger.Sanitize(); got != `"public"."sluice_load_ledger"` {
		t.Errorf("ledger %s", got)
	}
	if c.csv || c.prefix != "" || c.manifests != "manifests/" || c.errors != "errors/" || c.retention != 7*24*time.Hour {
		t.Errorf("defaults: csv %v prefix %q manifests %q errors %q retention %v", c.csv, c.prefix, c.manifests, c.errors, c.retention)
	}
	if ep, user := c.conn.Endpoint(); ep != "cluster.example:5439/dev" || user != "loader" {
		t.Errorf("endpoint %q user %q", ep, user)
	}
}

func TestCompileErrors(t *testing.T) {
	long := strings.Repeat("x", 128)
	tests := []struct {
		name string
		edit func(*Options)
		keys []string // option keys reported, in order
		msg  string   // in the joined message
	}{
		{"no table", func(o *Options) { o.Table = "" }, []string{"table"}, "required"},
		{"three-part table", func(o *Options) { o.Table = "a.b.c" }, []string{"table"}, "schema.table"},
		{"long table", func(o *Options) { o.Table = long }, []string{"table"}, "127 bytes"},
		{"ledger is the table", func(o *Options) { o.LedgerTable = "public.events" }, []string{"ledger_table"}, "must not be the target table"},
		{"bad ledger", func(o *Options) { o.LedgerTable = "a..b" }, []string{"ledger_table"}, "schema.table"},
		{"duplicate column", func(o *Options) { o.Columns = []string{"a", "b", "a"} }, []string{"columns[2]"}, `"a" twice`},
		{"empty column", func(o *Options) { o.Columns = []string{""} }, []string{"columns[0]"}, "empty name"},
		{"csv without columns", func(o *Options) { o.Format = "csv" }, []string{"columns"}, "required with format csv"},
		{"unknown format", func(o *Options) { o.Format = "avro" }, []string{"format"}, `"avro" is not json or csv`},
		{"copy_options semicolon", func(o *Options) { o.CopyOptions = "TRUNCATECOLUMNS; DROP TABLE x" }, []string{"copy_options"}, "';'"},
		{"copy_options NUL", func(o *Options) { o.CopyOptions = "TRUNCATECOLUMNS\x00" }, []string{"copy_options"}, "NUL"},
		{"copy_options unterminated", func(o *Options) { o.CopyOptions = "TIMEFORMAT 'auto" }, []string{"copy_options"}, "unterminated"},
		{"copy_options format", func(o *Options) { o.CopyOptions = "json 'auto'" }, []string{"copy_options"}, "JSON: the format"},
		{"copy_options gzip", func(o *Options) { o.CopyOptions = "TIMEFORMAT 'auto' gzip" }, []string{"copy_options"}, "GZIP: the compression"},
		{"copy_options credentials", func(o *Options) { o.CopyOptions = "CREDENTIALS 'aws_iam_role=x'" }, []string{"copy_options"}, "the credentials"},
		{"copy_options comment", func(o *Options) { o.CopyOptions = "TRUNCATECOLUMNS -- x" }, []string{"copy_options"}, "comments"},
		{"no credentials", func(o *Options) { o.IAMRole = "" }, []string{"iam_role"}, "required"},
		{"role and keys", func(o *Options) { o.AccessKeyID = "AKIA" }, []string{"iam_role"}, "not both"},
		{"bad role", func(o *Options) { o.IAMRole = "arn:aws:iam::12:user/x" }, []string{"iam_role"}, "not an IAM role ARN"},
		{"key without secret", func(o *Options) { o.IAMRole, o.AccessKeyID = "", "AKIA" }, []string{"secret_access_key"}, "required with access_key_id"},
		{"token alone", func(o *Options) { o.IAMRole, o.SessionToken = "", "tok" }, []string{"access_key_id", "secret_access_key"}, "required"},
		{"quote in secret", func(o *Options) { o.IAMRole, o.AccessKeyID, o.SecretAccessKey = "", "AKIA", "se'cret" }, []string{"secret_access_key"}, "must not hold quotes"},
		{"no bucket", func(o *Options) { o.Staging.Bucket = "" }, []string{"staging.bucket"}, "required"},
		{"bad endpoint", func(o *Options) { o.Staging.Endpoint = "ftp://x" }, []string{"staging.endpoint"}, "not an http"},
		{"expression prefix", func(o *Options) { o.Staging.Prefix = "p/!{timestamp:yyyy}/" }, []string{"staging.prefix"}, "no expressions"},
		{"slash prefix", func(o *Options) { o.Staging.Prefix = "/p/" }, []string{"staging.prefix"}, "must not start with '/'"},
		{"quote prefix", func(o *Options) { o.Staging.Prefix = "it's/" }, []string{"staging.prefix"}, "quotes"},
		{"empty manifest prefix", func(o *Options) { o.Staging.ManifestPrefix = "" }, []string{"staging.manifest_prefix"}, "must not be empty"},
		{"same prefixes", func(o *Options) { o.Staging.ErrorsPrefix = "manifests/" }, []string{"staging.errors_prefix"}, "must differ"},
		{"short retention", func(o *Options) { o.LedgerRetention = time.Minute }, []string{"ledger_retention"}, "under an hour"},
		{"no dsn", func(o *Options) { o.DSN = "" }, []string{"dsn"}, "required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := validOptions()
			tt.edit(&o)
			c, err := Compile(o)
			if err == nil {
				t.Fatalf("Compile accepted the options: %v", c)
			}
			if c != nil {
				t.Errorf("Compile returned a Config with an error")
			}
			if got := optionKeys(t, err); !slices.Equal(got, tt.keys) {
				t.Errorf("keys %q, want %q (%v)", got, tt.keys, err)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not say %q", err, tt.msg)
			}
			if strings.Contains(err.Error(), "se'cret") || strings.Contains(err.Error(), "s3cr3t-pw") {
				t.Errorf("error shows a secret: %v", err)
			}
		})
	}
}

func TestCompileAccepts(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Options)
	}{
		{"keys", func(o *Options) { o.IAMRole, o.AccessKeyID, o.SecretAccessKey = "", "AKIA", "secret/+=" }},
		{"keys and token", func(o *Options) { o.IAMRole, o.AccessKeyID, o.SecretAccessKey, o.SessionToken = "", "AKIA", "s", "t" }},
		{"role chain", func(o *Options) { o.IAMRole = testRole + ",arn:aws:iam::210987654321:role/path/other" }},
		{"csv", func(o *Options) { o.Format, o.Columns = "CSV", []string{"a"} }},
		{"copy options", func(o *Options) {
			o.CopyOptions = "TIMEFORMAT 'auto' DATEFORMAT 'auto' TRUNCATECOLUMNS REGION 'us-west-2' MAXERROR 3 ACCEPTINVCHARS AS '?' NULL AS 'it''s gzip'"
		}},
		{"schema table", func(o *Options) { o.Table, o.LedgerTable = "analytics.events", "ops.ledger" }},
		{"prefixes", func(o *Options) {
			o.Staging.Prefix, o.Staging.ManifestPrefix, o.Staging.ErrorsPrefix = "firehose/", "m/", "e/"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := validOptions()
			tt.edit(&o)
			if _, err := Compile(o); err != nil {
				t.Errorf("Compile: %v", err)
			}
		})
	}
}

func TestCompileReportsEverything(t *testing.T) {
	o := validOptions()
	o.Table, o.IAMRole, o.Staging.Bucket, o.Format = "", "", "", "xml"
	_, err := Compile(o)
	want := []string{"table", "format", "iam_role", "staging.bucket"}
	if got := optionKeys(t, err); !slices.Equal(got, want) {
		t.Errorf("keys %q, want %q", got, want)
	}
}
