package pgload

import (
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/sluice-dev/sluice/pipeline"
)

// Identifier limits, in bytes.
const (
	MaxPostgresName = 63  // PostgreSQL truncates longer names
	MaxRedshiftName = 127 // Redshift's limit
)

// ParseTable parses "schema.table" or "table" (in defaultSchema). Names
// are used exactly as written (quoted), each at most maxName bytes.
func ParseTable(s, defaultSchema string, maxName int) (pgx.Identifier, error) {
	parts := strings.Split(s, ".")
	switch len(parts) {
	case 1:
		parts = []string{defaultSchema, parts[0]}
	case 2:
	default:
		return nil, fmt.Errorf("%q: want schema.table or table", s)
	}
	for _, p := range parts {
		if err := CheckName(p, maxName); err != nil {
			return nil, fmt.Errorf("%q: %v", s, err)
		}
	}
	return pgx.Identifier(parts), nil
}

// CheckName checks an identifier that is used quoted: anything goes but
// an empty name, NUL, and names over maxName bytes.
func CheckName(s string, maxName int) error {
	switch {
	case s == "":
		return errors.New("empty name")
	case strings.ContainsRune(s, 0):
		return errors.New("a name must not hold NUL")
	case len(s) > maxName:
		return fmt.Errorf("%q is longer than %d bytes, the longest name the server keeps", s, maxName)
	}
	return nil
}

// CompileTables parses a destination's table and ledger_table options:
// the target (required) and its ledger (default DefaultLedgerTable in the
// target's schema), which must differ. Problems are
// *pipeline.OptionError values at "table" and "ledger_table".
func CompileTables(table, ledger, defaultSchema string, maxName int) (target, ledgerID pgx.Identifier, errs []error) {
	fail := func(key, format string, args ...any) {
		errs = append(errs, pipeline.OptionErrorf(key, format, args...))
	}
	if table == "" {
		fail("table", "required: the target table, schema.table")
	} else if id, err := ParseTable(table, defaultSchema, maxName); err != nil {
		fail("table", "%v", err)
	} else {
		target = id
	}
	switch {
	case ledger == "" && target != nil:
		ledgerID = pgx.Identifier{target[0], DefaultLedgerTable}
	case ledger != "":
		if id, err := ParseTable(ledger, defaultSchema, maxName); err != nil {
			fail("ledger_table", "%v", err)
		} else {
			ledgerID = id
		}
	}
	if ledgerID != nil && target != nil && ledgerID[0] == target[0] && ledgerID[1] == target[1] {
		fail("ledger_table", "must not be the target table")
	}
	return target, ledgerID, errs
}
