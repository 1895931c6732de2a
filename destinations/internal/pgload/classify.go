package pgload

import (
	"errors"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// Class is what an error means for a load.
type Class int

const (
	// Transient errors go away by themselves: the connection was lost or
	// refused (no SQLSTATE), 08xxx connection exceptions, 40001
	// serialization failure, 40P01 deadlock, 53xxx insufficient resources,
	// 57P01–57P03 shutdown and cannot-connect-now, 55P03 lock not
	// available, 57014 statement cancelled (a timeout). Retried; not
	// reported by Ready on their own (the pool's ping is).
	Transient Class = iota + 1
	// Rows errors are caused by particular rows: 22xxx data exceptions
	// (bad value, value too long, invalid text), 23xxx integrity
	// violations (not null, check, unique, foreign key), 54000 program
	// limit exceeded (a value too large to index). The rows are isolated
	// and dead-lettered; the others load.
	Rows
	// Table errors are about the table, the database or the credentials,
	// the same for every row: 42P01 table missing, 42703 column missing,
	// 42501 permission denied, 28xxx authentication, 3D000 database
	// missing, 3F000 schema missing, and every SQLSTATE not listed above.
	// Retried within the retry duration (an operator can fix them) and
	// reported by Ready, never isolated row by row.
	Table
)

func (c Class) String() string {
	switch c {
	case Transient:
		return "transient"
	case Rows:
		return "rows"
	case Table:
		return "table"
	}
	return "unknown"
}

// Classify tells what err means for a load and returns the server's error
// when there is one. An error without a SQLSTATE (a broken or refused
// connection, a timeout, an I/O error) is Transient.
func Classify(err error) (Class, *pgconn.PgError) {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return Transient, nil
	}
	return ClassOf(pe.Code), pe
}

// ClassOf classifies a SQLSTATE.
func ClassOf(code string) Class {
	switch code {
	case "40001", "40P01", "55P03", "57P01", "57P02", "57P03", "57014":
		return Transient
	case "54000":
		return Rows
	}
	switch {
	case strings.HasPrefix(code, "08"), strings.HasPrefix(code, "53"):
		return Transient
	case strings.HasPrefix(code, "22"), strings.HasPrefix(code, "23"):
		return Rows
	}
	return Table
}

// Code is the Firehose-style error code (prefix "Postgres" or
// "Redshift") of a load error, after Firehose's Redshift codes.
func Code(prefix string, err error) string {
	class, pe := Classify(err)
	if pe == nil {
		return prefix + ".ConnectionFailed"
	}
	switch {
	case class == Rows:
		return prefix + ".DataLoadFailed"
	case class == Transient:
		return prefix + ".ConnectionFailed"
	case strings.HasPrefix(pe.Code, "28"):
		return prefix + ".AuthenticationFailed"
	case pe.Code == "42P01" || pe.Code == "3F000":
		return prefix + ".TableNotFound"
	case pe.Code == "42703":
		return prefix + ".ColumnMismatch"
	case pe.Code == "42501":
		return prefix + ".PermissionDenied"
	case pe.Code == "3D000":
		return prefix + ".DatabaseNotFound"
	case pe.Code == "42601":
		return prefix + ".IncorrectCopyOptions"
	}
	return prefix + ".DeliveryFailed"
}

// Message renders a server error the way dead letters and logs show it:
// "SQLSTATE 22P02: invalid input syntax for type integer: "x" (COPY t,
// line 3, column n: "x")", with the detail when the server gave one.
func Message(pe *pgconn.PgError) string {
	var b strings.Builder
	b.WriteString("SQLSTATE ")
	b.WriteString(pe.Code)
	b.WriteString(": ")
	b.WriteString(pe.Message)
	if pe.Detail != "" {
		b.WriteString(" (")
		b.WriteString(pe.Detail)
		b.WriteString(")")
	}
	if pe.Where != "" {
		b.WriteString(" [")
		b.WriteString(pe.Where)
		b.WriteString("]")
	}
	return b.String()
}
