package redshift

import (
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sluice-dev/sluice/destinations/internal/pgload"
	"github.com/sluice-dev/sluice/destinations/internal/secret"
	"github.com/sluice-dev/sluice/destinations/object/s3store"
	"github.com/sluice-dev/sluice/pipeline"
)

// Formats of the staged objects.
const (
	// FormatJSON stages each record (a JSON object) as one line of GZIP
	// JSON lines; COPY reads them with FORMAT AS JSON 'auto' GZIP.
	FormatJSON = "json"
	// FormatCSV stages each record as one CSV row of Columns; COPY reads
	// them with CSV GZIP EMPTYASNULL.
	FormatCSV = "csv"
)

// Defaults.
const (
	DefaultManifestPrefix  = "manifests/"
	DefaultErrorsPrefix    = "errors/"
	DefaultLedgerRetention = 7 * 24 * time.Hour
	// DefaultSchema is the schema of a table named without one.
	DefaultSchema = "public"
	// MaxPrefixLength is the longest prefix accepted (Firehose's Prefix,
	// 0..1024 characters).
	MaxPrefixLength = 1024
)

// Options configure a Redshift destination (Firehose's
// RedshiftDestinationConfiguration). The connection keys (dsn, password,
// tls, max_connections, connect_timeout) are pgload.ConnOptions'.
type Options struct {
	pgload.ConnOptions `yaml:",inline"`
	// Table is the target, "schema.table" or "table" (schema public),
	// Firehose's DataTableName. Names are used exactly as written
	// (quoted): write them as Redshift stores unquoted names, in lower
	// case.
	Table string `yaml:"table"`
	// Columns are the columns COPY loads (Firehose's DataTableColumns);
	// empty means every column of the table, in order. Required with
	// format csv: the record's top-level keys of those names become the
	// row's fields.
	Columns []string `yaml:"columns"`
	// Format is json (default) or csv: how records are staged and read by
	// COPY (see the package documentation).
	Format string `yaml:"format"`
	// CopyOptions is appended to the COPY statement (Firehose's
	// CopyOptions), e.g. "TIMEFORMAT 'auto' TRUNCATECOLUMNS". The format,
	// compression, MANIFEST and credentials are the destination's own and
	// may not appear in it.
	CopyOptions string `yaml:"copy_options"`
	// IAMRole is the ARN of the role the cluster assumes to read the
	// staging bucket (COPY's IAM_ROLE). Exactly one of IAMRole and the
	// access keys.
	IAMRole string `yaml:"iam_role"`
	// AccessKeyID, SecretAccessKey and SessionToken are the keys COPY
	// reads the staging bucket with (ACCESS_KEY_ID, SECRET_ACCESS_KEY,
	// SESSION_TOKEN); write them as ${ENV}. They are never logged.
	AccessKeyID     secret.Secret `yaml:"access_key_id"`
	SecretAccessKey secret.Secret `yaml:"secret_access_key"`
	SessionToken    secret.Secret `yaml:"session_token"`
	// Staging is the S3 bucket records are staged in (Firehose's
	// S3Configuration).
	Staging Staging `yaml:"staging"`
	// LedgerTable is the load ledger, "schema.table" or "table" (default:
	// sluice_load_ledger in the target's schema), created when missing.
	LedgerTable string `yaml:"ledger_table"`
	// LedgerRetention is how long ledger entries are kept (default 7
	// days, at least an hour).
	LedgerRetention time.Duration `yaml:"ledger_retention"`
}

// Staging is the staging bucket: the S3 client and upload settings of the
// s3 destination (bucket, region, endpoint, force_path_style, the
// client's own access keys, sse, storage_class, part_size,
// upload_concurrency) and the prefixes of the staged objects.
type Staging struct {
	s3store.Config `yaml:",inline"`
	// Prefix starts every staged key (Firehose's S3Configuration Prefix:
	// literal text only; yyyy/MM/dd/HH/ is appended directly). Default "".
	Prefix string `yaml:"prefix"`
	// ManifestPrefix follows Prefix in the keys of manifests (default
	// "manifests/").
	ManifestPrefix string `yaml:"manifest_prefix"`
	// ErrorsPrefix follows Prefix in the keys of the manifests of batches
	// given up on (default "errors/").
	ErrorsPrefix string `yaml:"errors_prefix"`
}

// DefaultOptions returns the defaults a configuration block is decoded
// onto.
func DefaultOptions() Options {
	return Options{
		Format:          FormatJSON,
		LedgerRetention: DefaultLedgerRetention,
		Staging: Staging{Config: s3store.DefaultConfig(),
			ManifestPrefix: DefaultManifestPrefix, ErrorsPrefix: DefaultErrorsPrefix},
	}
}

// Validate reports every problem with the options at once (see Compile).
func (o Options) Validate() error {
	_, err := Compile(o)
	return err
}

// String prints the options without secrets (the connection string, the
// access keys of COPY and of the staging client).
func (o Options) String() string {
	return fmt.Sprintf("{table:%q columns:%q format:%q copy_options:%q iam_role:%q access_key_id:%s secret_access_key:%s session_token:%s staging:s3://%s/%s}",
		o.Table, o.Columns, o.Format, o.CopyOptions, o.IAMRole, o.AccessKeyID, o.SecretAccessKey, o.SessionToken,
		o.Staging.Bucket, o.Staging.Prefix)
}

// GoString is String.
func (o Options) GoString() string { return o.String() }

// LogValue is String.
func (o Options) LogValue() slog.Value { return slog.StringValue(o.String()) }

// Config is a compiled, valid set of Options: what New builds a
// destination from. It prints without secrets.
type Config struct {
	conn        pgload.Conn
	tableName   string // as configured, for descriptions
	table       pgx.Identifier
	ledger      pgx.Identifier
	columns     []string
	csv         bool
	copyOptions string
	iamRole     string
	keyID       secret.Secret
	secretKey   secret.Secret
	token       secret.Secret
	store       s3store.Config
	prefix      string
	manifests   string
	errors      string
	retention   time.Duration
}

// iamRoleRE is an IAM role ARN (COPY accepts a comma-separated chain).
var iamRoleRE = regexp.MustCompile(`^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$`)

// Compile validates opts and compiles them. Every problem is reported as a
// *pipeline.OptionError with the option's key (staging keys as
// "staging.<key>"), joined with errors.Join. It does no I/O.
func Compile(opts Options) (*Config, error) {
	var errs []error
	fail := func(key, format string, args ...any) {
		errs = append(errs, pipeline.OptionErrorf(key, format, args...))
	}
	conn, err := pgload.CompileConn(opts.ConnOptions)
	if err != nil {
		errs = append(errs, err)
	}
	c := &Config{conn: conn, tableName: opts.Table, copyOptions: strings.TrimSpace(opts.CopyOptions),
		iamRole: opts.IAMRole, keyID: opts.AccessKeyID, secretKey: opts.SecretAccessKey, token: opts.SessionToken,
		store: opts.Staging.Config, prefix: opts.Staging.Prefix, manifests: opts.Staging.ManifestPrefix,
		errors: opts.Staging.ErrorsPrefix, retention: opts.LedgerRetention}

	target, ledger, terrs := pgload.CompileTables(opts.Table, opts.LedgerTable, DefaultSchema, pgload.MaxRedshiftName)
	c.table, c.ledger = target, ledger
	errs = append(errs, terrs...)
	seen := map[string]bool{}
	for i, col := range opts.Columns {
		key := fmt.Sprintf("columns[%d]", i)
		switch err := pgload.CheckName(col, pgload.MaxRedshiftName); {
		case err != nil:
			fail(key, "%v", err)
		case seen[col]:
			fail(key, "%q twice", col)
		}
		seen[col] = true
	}
	c.columns = opts.Columns
	switch strings.ToLower(opts.Format) {
	case "", FormatJSON:
	case FormatCSV:
		c.csv = true
		if len(opts.Columns) == 0 {
			fail("columns", "required with format csv: the record keys that become the row's fields, in the order of the row")
		}
	default:
		fail("format", "%q is not %s or %s", opts.Format, FormatJSON, FormatCSV)
	}
	if err := checkCopyOptions(c.copyOptions); err != nil {
		fail("copy_options", "%v", err)
	}

	keys := opts.AccessKeyID != "" || opts.SecretAccessKey != "" || opts.SessionToken != ""
	switch {
	case opts.IAMRole == "" && !keys:
		fail("iam_role", "required: the role the cluster reads the staging bucket with (or access_key_id and secret_access_key)")
	case opts.IAMRole != "" && keys:
		fail("iam_role", "set iam_role or access keys, not both")
	case opts.IAMRole != "":
		for _, role := range strings.Split(opts.IAMRole, ",") {
			if !iamRoleRE.MatchString(role) {
				fail("iam_role", "%q is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)", role)
			}
		}
	default:
		if opts.AccessKeyID == "" {
			fail("access_key_id", "required with secret_access_key or session_token")
		}
		if opts.SecretAccessKey == "" {
			fail("secret_access_key", "required with access_key_id")
		}
		for _, k := range []struct {
			key string
			val secret.Secret
		}{{"access_key_id", opts.AccessKeyID}, {"secret_access_key", opts.SecretAccessKey}, {"session_token", opts.SessionToken}} {
			if strings.ContainsAny(string(k.val), "\\'\x00\r\n") {
				// The value itself is never shown.
				fail(k.key, "must not hold quotes, backslashes, NUL or line breaks")
			}
		}
	}

	errs = append(errs, pipeline.NestOptionErrors("staging", opts.Staging.Config.Validate()))
	checkPrefix := func(key, p string, required bool) {
		switch {
		case required && p == "":
			fail(key, "must not be empty")
		case len(p) > MaxPrefixLength:
			fail(key, "longer than %d characters", MaxPrefixLength)
		case strings.Contains(p, "!{"):
			fail(key, "%q: a Redshift staging prefix takes no expressions (Firehose's rule)", p)
		case strings.HasPrefix(p, "/"):
			fail(key, "%q must not start with '/' (S3 keys have no leading slash)", p)
		case strings.ContainsAny(p, "\\'\"\x00\r\n\t"):
			fail(key, "%q: quotes, backslashes and control characters are not allowed", p)
		}
	}
	checkPrefix("staging.prefix", c.prefix, false)
	checkPrefix("staging.manifest_prefix", c.manifests, true)
	checkPrefix("staging.errors_prefix", c.errors, true)
	if c.manifests != "" && c.manifests == c.errors {
		fail("staging.errors_prefix", "must differ from manifest_prefix %q", c.manifests)
	}

	switch {
	case opts.LedgerRetention == 0:
		c.retention = DefaultLedgerRetention
	case opts.LedgerRetention < time.Hour:
		fail("ledger_retention", "%v is under an hour: a batch redelivered after a restart would not be recognised", opts.LedgerRetention)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return c, nil
}

// ownWords are the COPY parameters the destination writes itself: the
// data format, the compression, MANIFEST and the credentials. copy_options
// may not repeat or contradict them.
var ownWords = map[string]string{
	"FORMAT": "the format", "JSON": "the format", "CSV": "the format", "AVRO": "the format",
	"PARQUET": "the format", "ORC": "the format", "FIXEDWIDTH": "the format", "SHAPEFILE": "the format",
	"DELIMITER": "the format", "QUOTE": "the format", "ESCAPE": "the format", "REMOVEQUOTES": "the format",
	"GZIP": "the compression", "BZIP2": "the compression", "LZOP": "the compression", "ZSTD": "the compression",
	"MANIFEST": "MANIFEST",
	"IAM_ROLE": "the credentials", "CREDENTIALS": "the credentials", "ACCESS_KEY_ID": "the credentials",
	"SECRET_ACCESS_KEY": "the credentials", "SESSION_TOKEN": "the credentials",
}

// checkCopyOptions checks copy_options: one statement's worth of COPY
// parameters, quotes balanced, none of the destination's own parameters.
func checkCopyOptions(s string) error {
	for i := 0; i < len(s); {
		ch := s[i]
		switch {
		case ch == 0:
			return errors.New("must not hold NUL")
		case ch == ';':
			return errors.New("must not hold ';' (one COPY statement)")
		case ch == '-' && strings.HasPrefix(s[i:], "--"), ch == '/' && strings.HasPrefix(s[i:], "/*"):
			return errors.New("must not hold comments")
		case ch == '\'':
			end := literalEnd(s, i)
			if end < 0 {
				return errors.New("unterminated quoted literal")
			}
			if strings.ContainsRune(s[i:end], '\\') {
				return errors.New("backslashes in quoted literals are not allowed (their meaning differs between servers)")
			}
			i = end
			continue
		case isWordByte(ch):
			j := i
			for j < len(s) && isWordByte(s[j]) {
				j++
			}
			word := strings.ToUpper(s[i:j])
			if what, ok := ownWords[word]; ok {
				return fmt.Errorf("%s: %s is set by the destination (format, staging credentials), not in copy_options", word, what)
			}
			i = j
			continue
		}
		i++
	}
	return nil
}

// literalEnd returns the index after the single-quoted literal starting at
// s[i] (quotes doubled inside), or -1 when it is not terminated.
func literalEnd(s string, i int) int {
	for j := i + 1; j < len(s); j++ {
		if s[j] != '\'' {
			continue
		}
		if j+1 < len(s) && s[j+1] == '\'' {
			j++
			continue
		}
		return j + 1
	}
	return -1
}

func isWordByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// Where names the table and the staging location, for logs.
func (c *Config) Where() string {
	return c.table.Sanitize() + " via s3://" + c.store.Bucket + "/" + c.prefix
}

// Format prints the configuration without secrets.
func (c Config) Format(f fmt.State, _ rune) {
	creds := "iam_role:" + c.iamRole
	if c.iamRole == "" {
		creds = fmt.Sprintf("access_key_id:%s secret_access_key:%s session_token:%s", c.keyID, c.secretKey, c.token)
	}
	format := FormatJSON
	if c.csv {
		format = FormatCSV
	}
	fmt.Fprintf(f, "{%v table:%s columns:%s format:%s copy_options:%q %s staging:s3://%s/%s ledger:%s}", c.conn,
		c.table.Sanitize(), strings.Join(c.columns, ","), format, c.copyOptions, creds, c.store.Bucket, c.prefix, c.ledger.Sanitize())
}

// LogValue is the configuration without secrets.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(slog.Any("connection", c.conn.LogValue()), slog.String("table", c.table.Sanitize()),
		slog.Bool("csv", c.csv), slog.String("staging", "s3://"+c.store.Bucket+"/"+c.prefix),
		slog.Bool("iam_role", c.iamRole != ""), slog.String("ledger", c.ledger.Sanitize()))
}
