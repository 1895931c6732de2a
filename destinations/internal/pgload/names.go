package pgload

import (
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
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
