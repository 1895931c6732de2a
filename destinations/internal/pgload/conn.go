// Package pgload is the plumbing the warehouse destinations share
// (destinations/postgres, destinations/redshift): connection options with
// secrets and TLS modes, the classification of errors by SQLSTATE, and the
// load ledger that makes a batch's load exactly-once.
//
// It does only what both destinations need; how rows get into a table
// (COPY from the client, COPY from S3) is each destination's own.
package pgload

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sluice-dev/sluice/destinations/internal/secret"
	"github.com/sluice-dev/sluice/pipeline"
)

// TLS modes (libpq's sslmode values).
const (
	TLSDisable    = "disable"
	TLSPrefer     = "prefer"
	TLSRequire    = "require"
	TLSVerifyCA   = "verify-ca"
	TLSVerifyFull = "verify-full"
)

// Defaults of the connection options.
const (
	DefaultConnectTimeout = 10 * time.Second
	DefaultMaxConnections = 4
	MaxMaxConnections     = 128
)

// ConnOptions are the connection keys of a warehouse destination's block.
type ConnOptions struct {
	// DSN is the connection string, a URL (postgres://user:pw@host:5432/db)
	// or libpq's key=value form; write it as ${ENV}. It is never logged.
	DSN secret.Secret `yaml:"dsn"`
	// DSNFile is a file holding the connection string, read at start.
	// Exactly one of DSN and DSNFile.
	DSNFile string `yaml:"dsn_file"`
	// Password, when set, replaces the connection string's password;
	// PasswordFile reads it from a file. At most one of the two.
	Password     secret.Secret `yaml:"password"`
	PasswordFile string        `yaml:"password_file"`
	// TLS overrides the connection string's sslmode and certificates.
	TLS TLSOptions `yaml:"tls"`
	// MaxConnections bounds the connection pool (default 4; each load in
	// flight holds one connection).
	MaxConnections int `yaml:"max_connections"`
	// ConnectTimeout bounds establishing one connection (default 10 s).
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
}

// TLSOptions are the TLS keys (libpq's sslmode, sslrootcert, sslcert,
// sslkey). Empty values leave the connection string's own.
type TLSOptions struct {
	// Mode is disable, prefer, require, verify-ca or verify-full. Without
	// it (and without sslmode in the connection string) the mode is
	// prefer, libpq's default: TLS when the server offers it.
	Mode string `yaml:"mode"`
	// CAFile is the CA bundle that verifies the server (verify-ca,
	// verify-full).
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a client certificate and its key.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName overrides the name verify-full checks the server's
	// certificate against (default: the host).
	ServerName string `yaml:"server_name"`
}

// Conn is compiled connection options: what Open builds a pool from. It
// prints without the connection string or password.
type Conn struct {
	dsn          secret.Secret
	dsnFile      string
	password     secret.Secret
	passwordFile string
	tls          TLSOptions
	maxConns     int
	timeout      time.Duration
	// endpoint is what the connection string shows of the server, for
	// descriptions: "host:port/database" and the user (empty with
	// dsn_file).
	endpoint, user string
}

// CompileConn validates the connection options; every problem is a
// *pipeline.OptionError at its key. It reads no file.
func CompileConn(o ConnOptions) (Conn, error) {
	var errs []error
	fail := func(key, format string, args ...any) {
		errs = append(errs, pipeline.OptionErrorf(key, format, args...))
	}
	c := Conn{dsn: o.DSN, dsnFile: o.DSNFile, password: o.Password, passwordFile: o.PasswordFile,
		tls: o.TLS, maxConns: o.MaxConnections, timeout: o.ConnectTimeout}
	switch {
	case o.DSN == "" && o.DSNFile == "":
		fail("dsn", "required (a postgres:// URL or key=value connection string; write it as ${ENV}), or dsn_file")
	case o.DSN != "" && o.DSNFile != "":
		fail("dsn", "set dsn or dsn_file, not both")
	case o.DSN != "":
		pc, err := pgconn.ParseConfig(withTLS(string(o.DSN), TLSOptions{Mode: TLSDisable}))
		if err != nil {
			fail("dsn", "not a valid connection string: %v", parseReason(err))
		} else {
			c.endpoint = fmt.Sprintf("%s:%d/%s", pc.Host, pc.Port, pc.Database)
			c.user = pc.User
		}
	}
	if o.Password != "" && o.PasswordFile != "" {
		fail("password", "set password or password_file, not both")
	}
	switch o.TLS.Mode {
	case "", TLSDisable, TLSPrefer, TLSRequire, TLSVerifyCA, TLSVerifyFull:
	default:
		fail("tls.mode", "%q is not disable, prefer, require, verify-ca or verify-full", o.TLS.Mode)
	}
	if (o.TLS.CertFile == "") != (o.TLS.KeyFile == "") {
		fail("tls.cert_file", "cert_file and key_file go together")
	}
	if o.TLS.Mode == TLSDisable && (o.TLS.CAFile != "" || o.TLS.CertFile != "" || o.TLS.ServerName != "") {
		fail("tls.mode", "disable with TLS files or server_name set")
	}
	switch {
	case o.MaxConnections == 0:
		c.maxConns = DefaultMaxConnections
	case o.MaxConnections < 0 || o.MaxConnections > MaxMaxConnections:
		fail("max_connections", "%d is not between 1 and %d", o.MaxConnections, MaxMaxConnections)
	}
	switch {
	case o.ConnectTimeout == 0:
		c.timeout = DefaultConnectTimeout
	case o.ConnectTimeout < 0:
		fail("connect_timeout", "%v is negative", o.ConnectTimeout)
	}
	return c, errors.Join(errs...)
}

// parseReason is a connection string parse error without the string
// (pgconn redacts passwords only on a best-effort basis).
func parseReason(err error) string {
	var pe *pgconn.ParseConfigError
	if errors.As(err, &pe) {
		if inner := errors.Unwrap(pe); inner != nil {
			return inner.Error()
		}
		return "cannot parse it"
	}
	return "cannot parse it"
}

// Endpoint returns "host:port/database" and the user name of the
// connection string (empty when it is read from dsn_file): no secret.
func (c Conn) Endpoint() (endpoint, user string) { return c.endpoint, c.user }

// OpenOptions tune a pool for one destination.
type OpenOptions struct {
	// SimpleProtocol sends every statement with the simple query protocol
	// (Redshift).
	SimpleProtocol bool
	// AppName is the application_name the server shows.
	AppName string
}

// Open reads the secret files and builds the connection pool. It does not
// connect: the pool connects on first use, so a database that is down at
// start does not stop the daemon.
func (c Conn) Open(ctx context.Context, o OpenOptions) (*pgxpool.Pool, error) {
	dsn, password := c.dsn, c.password
	if c.dsnFile != "" {
		s, err := secret.ReadFile("dsn_file", c.dsnFile)
		if err != nil {
			return nil, err
		}
		dsn = s
	}
	if c.passwordFile != "" {
		s, err := secret.ReadFile("password_file", c.passwordFile)
		if err != nil {
			return nil, err
		}
		password = s
	}
	cfg, err := pgxpool.ParseConfig(withTLS(string(dsn), c.tls))
	if err != nil {
		return nil, fmt.Errorf("connection string: %s", parseReason(err))
	}
	if password != "" {
		cfg.ConnConfig.Password = string(password) // fallbacks share it
	}
	if c.tls.ServerName != "" {
		if cfg.ConnConfig.TLSConfig != nil {
			cfg.ConnConfig.TLSConfig.ServerName = c.tls.ServerName
		}
		for _, fb := range cfg.ConnConfig.Fallbacks {
			if fb.TLSConfig != nil {
				fb.TLSConfig.ServerName = c.tls.ServerName
			}
		}
	}
	cfg.ConnConfig.ConnectTimeout = c.timeout
	if o.AppName != "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = o.AppName
	}
	if o.SimpleProtocol {
		cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	}
	cfg.MaxConns = int32(c.maxConns)
	cfg.MinConns = 0
	cfg.MaxConnIdleTime = 5 * time.Minute
	cfg.HealthCheckPeriod = 30 * time.Second
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connection pool: %w", err)
	}
	return pool, nil
}

// withTLS returns dsn with the TLS options set as libpq parameters.
func withTLS(dsn string, t TLSOptions) string {
	params := [][2]string{}
	add := func(k, v string) {
		if v != "" {
			params = append(params, [2]string{k, v})
		}
	}
	add("sslmode", t.Mode)
	add("sslrootcert", t.CAFile)
	add("sslcert", t.CertFile)
	add("sslkey", t.KeyFile)
	if len(params) == 0 {
		return dsn
	}
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return dsn // ParseConfig reports it
		}
		q := u.Query()
		for _, p := range params {
			q.Set(p[0], p[1])
		}
		u.RawQuery = q.Encode()
		return u.String()
	}
	var b strings.Builder
	b.WriteString(dsn)
	for _, p := range params {
		v := strings.ReplaceAll(strings.ReplaceAll(p[1], `\`, `\\`), `'`, `\'`)
		fmt.Fprintf(&b, " %s='%s'", p[0], v)
	}
	return b.String()
}

// Format prints the options without the connection string or password.
func (c Conn) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "{dsn:%s dsn_file:%q password:%s password_file:%q tls.mode:%q max_connections:%d connect_timeout:%v}",
		c.dsn, c.dsnFile, c.password, c.passwordFile, c.tls.Mode, c.maxConns, c.timeout)
}

// LogValue is the options without the connection string or password.
func (c Conn) LogValue() slog.Value {
	return slog.GroupValue(slog.Bool("dsn", c.dsn != "" || c.dsnFile != ""), slog.String("tls_mode", c.tls.Mode),
		slog.Int("max_connections", c.maxConns), slog.Duration("connect_timeout", c.timeout))
}

// readyTimeout bounds Ping when its context has no deadline.
const readyTimeout = 5 * time.Second

// Ping checks that pool reaches the server (within 5 s when ctx has no
// deadline), for a destination's Ready. The error names what ("postgres",
// "redshift") and the server's SQLSTATE when it answered; scrub, when
// not nil, removes secrets from the message.
func Ping(ctx context.Context, pool *pgxpool.Pool, what string, scrub func(string) string) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, readyTimeout)
		defer cancel()
	}
	err := pool.Ping(ctx)
	if err == nil {
		return nil
	}
	if scrub == nil {
		scrub = func(s string) string { return s }
	}
	if _, pe := Classify(err); pe != nil {
		return fmt.Errorf("%s: %s", what, scrub(Message(pe)))
	}
	return fmt.Errorf("%s unreachable: %s", what, scrub(err.Error()))
}
