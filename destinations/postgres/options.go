package postgres

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sluice-dev/sluice/destinations/internal/pgload"
	"github.com/sluice-dev/sluice/pipeline"
)

// Load modes.
const (
	// ModeInsert appends every record as a new row.
	ModeInsert = "insert"
	// ModeUpsert inserts a row per key, or updates the row with the key:
	// the last record of a key wins.
	ModeUpsert = "upsert"
)

// Defaults.
const (
	DefaultDataColumn      = "data"
	DefaultLedgerRetention = 7 * 24 * time.Hour
	// DefaultSchema is the schema of a table named without one.
	DefaultSchema = "public"
)

// Options configure a Postgres destination. The YAML keys are the block's
// keys in a stream's configuration; the connection keys (dsn, password,
// tls, max_connections, connect_timeout) are pgload.ConnOptions'.
type Options struct {
	pgload.ConnOptions `yaml:",inline"`
	// Table is the target, "schema.table" or "table" (schema public).
	// Names are used exactly as written (quoted), so write them as
	// Postgres stores unquoted names: in lower case.
	Table string `yaml:"table"`
	// Mode is insert (default) or upsert.
	Mode string `yaml:"mode"`
	// Keys are the columns that identify a row in upsert mode; the table
	// needs a unique index or constraint on exactly them.
	Keys []string `yaml:"keys"`
	// Columns map record fields to columns. Without them, the whole
	// record goes into one jsonb column, DataColumn.
	Columns []Column `yaml:"columns"`
	// DataColumn names the jsonb column of the whole record when Columns
	// is empty (default "data").
	DataColumn string `yaml:"data_column"`
	// RecordIDColumn, when set, receives each record's Firehose record ID
	// (text; unique when the table is created by create_table).
	RecordIDColumn string `yaml:"record_id_column"`
	// ArrivalTimeColumn, when set, receives each record's approximate
	// arrival time (timestamptz).
	ArrivalTimeColumn string `yaml:"arrival_time_column"`
	// CreateTable creates the schema and the table from the mapping when
	// they are missing.
	CreateTable bool `yaml:"create_table"`
	// LedgerTable is the load ledger, "schema.table" or "table" (default:
	// sluice_load_ledger in the target's schema), created when missing.
	LedgerTable string `yaml:"ledger_table"`
	// LedgerRetention is how long ledger entries are kept (default 7
	// days): a batch the daemon did not record as delivered is redelivered
	// at its next start, and is recognised if that is within the
	// retention.
	LedgerRetention time.Duration `yaml:"ledger_retention"`
}

// DefaultOptions returns the defaults a configuration block is decoded
// onto.
func DefaultOptions() Options {
	return Options{Mode: ModeInsert, DataColumn: DefaultDataColumn, LedgerRetention: DefaultLedgerRetention}
}

// Config is a compiled, valid set of Options: what New builds a
// destination from. It prints without secrets.
type Config struct {
	conn        pgload.Conn
	table       pgx.Identifier
	ledger      pgx.Identifier
	upsert      bool
	keys        []string
	mapping     *Mapping
	recordID    string
	arrival     string
	createTable bool
	retention   time.Duration
	columns     []string // COPY columns: mapping, record id, arrival time
}

// Compile validates opts and compiles them. Every problem is reported as a
// *pipeline.OptionError with the option's key, joined with errors.Join.
// It does no I/O.
func Compile(opts Options) (*Config, error) {
	var errs []error
	fail := func(key, format string, args ...any) {
		errs = append(errs, pipeline.OptionErrorf(key, format, args...))
	}
	conn, err := pgload.CompileConn(opts.ConnOptions)
	if err != nil {
		errs = append(errs, err)
	}
	c := &Config{conn: conn, recordID: opts.RecordIDColumn, arrival: opts.ArrivalTimeColumn,
		createTable: opts.CreateTable, retention: opts.LedgerRetention}
	target, ledger, terrs := pgload.CompileTables(opts.Table, opts.LedgerTable, DefaultSchema, pgload.MaxPostgresName)
	c.table, c.ledger = target, ledger
	errs = append(errs, terrs...)
	if len(opts.Columns) == 0 {
		if err := pgload.CheckName(opts.DataColumn, pgload.MaxPostgresName); err != nil {
			fail("data_column", "%v", err)
		} else {
			c.mapping = WholeRecord(opts.DataColumn)
		}
	} else {
		m, err := CompileMapping(opts.Columns)
		if err != nil {
			errs = append(errs, err)
		} else {
			c.mapping = m
		}
	}
	if c.mapping != nil {
		c.columns = append(c.columns, c.mapping.Names()...)
	}
	for _, extra := range []struct{ key, name string }{{"record_id_column", opts.RecordIDColumn}, {"arrival_time_column", opts.ArrivalTimeColumn}} {
		if extra.name == "" {
			continue
		}
		if err := pgload.CheckName(extra.name, pgload.MaxPostgresName); err != nil {
			fail(extra.key, "%v", err)
			continue
		}
		for _, col := range c.columns {
			if col == extra.name {
				fail(extra.key, "column %q is already a column of the mapping", extra.name)
			}
		}
		c.columns = append(c.columns, extra.name)
	}
	switch opts.Mode {
	case ModeInsert, "":
		if len(opts.Keys) > 0 {
			fail("keys", "keys are for mode upsert")
		}
	case ModeUpsert:
		c.upsert = true
		if len(opts.Keys) == 0 {
			fail("keys", "mode upsert needs the key columns that identify a row")
		}
		seen := map[string]bool{}
		for i, k := range opts.Keys {
			switch {
			case seen[k]:
				fail(fmt.Sprintf("keys[%d]", i), "%q twice", k)
			case c.mapping != nil && !containsName(c.columns, k):
				fail(fmt.Sprintf("keys[%d]", i), "%q is not a loaded column (%s)", k, strings.Join(c.columns, ", "))
			}
			seen[k] = true
		}
		c.keys = opts.Keys
	default:
		fail("mode", "%q is not insert or upsert", opts.Mode)
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

// MaxInFlight bounds the stream's max_in_flight: an upsert commits a
// stream's batches one at a time and in order, so that an older batch
// (retried, or slower) never overwrites a newer one.
func (c *Config) MaxInFlight() (int, string, string) {
	if c.upsert {
		return 1, "mode", "mode upsert loads one batch at a time, in order"
	}
	return 0, "", ""
}

func containsName(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Format prints the configuration without secrets.
func (c Config) Format(f fmt.State, _ rune) {
	mode := ModeInsert
	if c.upsert {
		mode = ModeUpsert
	}
	fmt.Fprintf(f, "{%v table:%s mode:%s columns:%s ledger:%s}", c.conn, c.table.Sanitize(), mode,
		strings.Join(c.columns, ","), c.ledger.Sanitize())
}

// LogValue is the configuration without secrets.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(slog.Any("connection", c.conn.LogValue()), slog.String("table", c.table.Sanitize()),
		slog.Bool("upsert", c.upsert), slog.String("ledger", c.ledger.Sanitize()))
}
