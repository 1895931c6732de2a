package parquet

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/sluice-dev/sluice/destinations/format"
	"github.com/sluice-dev/sluice/pipeline"
)

// Error codes of records that do not fit the schema. ParseError and
// MalformedData are the codes Firehose reports (observed on the real
// service; see the package report); MissingRequiredField is Sluice's, as
// Glue schemas have no required columns.
const (
	// CodeParseError: the record is not JSON, or not JSON objects.
	CodeParseError = "DataFormatConversion.ParseError"
	// CodeMalformedData: a value does not fit its column's type.
	CodeMalformedData = "DataFormatConversion.MalformedData"
	// CodeMissingRequiredField: a required column's value is missing or null.
	CodeMissingRequiredField = "DataFormatConversion.MissingRequiredField"
)

func recordError(code string, err error) error {
	return &pipeline.CodedError{Code: code, OutputType: format.OutputFormatConversionFailed, Err: err}
}

func malformed(c *column, v any, want string) error {
	return recordError(CodeMalformedData, fmt.Errorf("column %s: %s is not %s", c.path, describe(v), want))
}

func describe(v any) string {
	switch x := v.(type) {
	case string:
		if len(x) > 40 {
			x = x[:40] + "…"
		}
		return strconv.Quote(x)
	case json.Number:
		return "number " + x.String()
	case bool:
		return "boolean " + strconv.FormatBool(x)
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	}
	return fmt.Sprintf("%T", v)
}

// leafValue converts a non-null JSON value for a leaf column.
func (w *writer) leafValue(c *column, v any) (parquet.Value, error) {
	switch c.kind {
	case kString:
		switch x := v.(type) {
		case string:
			return parquet.ByteArrayValue([]byte(x)), nil
		case json.Number:
			return parquet.ByteArrayValue([]byte(x)), nil
		case bool:
			return parquet.ByteArrayValue([]byte(strconv.FormatBool(x))), nil
		}
		return parquet.Value{}, malformed(c, v, "a string")
	case kJSON:
		w.jbuf.Reset()
		enc := json.NewEncoder(&w.jbuf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			return parquet.Value{}, recordError(CodeMalformedData, fmt.Errorf("column %s: %w", c.path, err))
		}
		return parquet.ByteArrayValue(bytes.Clone(bytes.TrimSuffix(w.jbuf.Bytes(), []byte("\n")))), nil
	case kInt32, kInt64:
		n, ok := toInt(v)
		if !ok || (c.kind == kInt32 && (n < math.MinInt32 || n > math.MaxInt32)) {
			return parquet.Value{}, malformed(c, v, "an integer of type "+c.typ)
		}
		if c.kind == kInt32 {
			return parquet.Int32Value(int32(n)), nil
		}
		return parquet.Int64Value(n), nil
	case kFloat, kDouble:
		f, ok := toFloat(v)
		if !ok {
			return parquet.Value{}, malformed(c, v, "a number")
		}
		if c.kind == kFloat {
			return parquet.FloatValue(float32(f)), nil
		}
		return parquet.DoubleValue(f), nil
	case kBoolean:
		switch x := v.(type) {
		case bool:
			return parquet.BooleanValue(x), nil
		case string:
			if b, err := strconv.ParseBool(strings.ToLower(x)); err == nil && (len(x) > 1) {
				return parquet.BooleanValue(b), nil
			}
		}
		return parquet.Value{}, malformed(c, v, "a boolean")
	case kTimestamp:
		t, ok := toTime(v)
		if !ok {
			return parquet.Value{}, malformed(c, v, "a timestamp (RFC 3339 or epoch seconds/millis/micros)")
		}
		if c.micros {
			return parquet.Int64Value(t.UnixMicro()), nil
		}
		return parquet.Int64Value(t.UnixMilli()), nil
	case kDate:
		d, ok := toDate(v)
		if !ok {
			return parquet.Value{}, malformed(c, v, "a date (YYYY-MM-DD, RFC 3339 or days since 1970-01-01)")
		}
		return parquet.Int32Value(d), nil
	case kDecimal:
		return w.decimal(c, v)
	}
	return parquet.Value{}, fmt.Errorf("column %s: no leaf conversion for %s", c.path, c.typ)
}

func toInt(v any) (int64, bool) {
	var s string
	switch x := v.(type) {
	case json.Number:
		s = string(x)
	case string: // OpenX accepts numbers in strings
		s = strings.TrimSpace(x)
	default:
		return 0, false
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != math.Trunc(f) || f < math.MinInt64 || f >= math.MaxInt64 {
		return 0, false
	}
	return int64(f), true
}

func toFloat(v any) (float64, bool) {
	var s string
	switch x := v.(type) {
	case json.Number:
		s = string(x)
	case string:
		s = strings.TrimSpace(x)
	default:
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

// Epoch numbers are read by magnitude: below 1e11 they are seconds (up to
// year 5138, fractions allowed), below 1e14 milliseconds (from 1973-03-03
// on), below 1e17 microseconds, else nanoseconds.
func epoch(s string) (time.Time, bool) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		a := n
		if a < 0 {
			a = -a
		}
		switch {
		case a < 1e11:
			return time.Unix(n, 0), true
		case a < 1e14:
			return time.UnixMilli(n), true
		case a < 1e17:
			return time.UnixMicro(n), true
		default:
			return time.Unix(0, n), true
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) >= 1e11 {
		return time.Time{}, false
	}
	sec := math.Floor(f)
	return time.Unix(int64(sec), int64(math.Round((f-sec)*1e6))*1e3), true
}

// Timestamp layouts accepted in strings besides RFC 3339 (OpenX's list);
// strings without a zone are UTC.
var timeLayouts = [...]string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02",
}

func toTime(v any) (time.Time, bool) {
	switch x := v.(type) {
	case json.Number:
		return epoch(string(x))
	case string:
		s := strings.TrimSpace(x)
		if s == "" {
			return time.Time{}, false
		}
		if c := s[0]; c == '-' || (c >= '0' && c <= '9') && !strings.ContainsAny(s, ":-") {
			if t, ok := epoch(s); ok {
				return t, true
			}
		}
		for _, l := range timeLayouts {
			if t, err := time.Parse(l, s); err == nil {
				return t, true
			}
		}
	}
	return time.Time{}, false
}

func toDate(v any) (int32, bool) {
	switch x := v.(type) {
	case json.Number:
		n, err := strconv.ParseInt(string(x), 10, 32)
		return int32(n), err == nil
	case string:
		t, ok := toTime(x)
		if !ok {
			return 0, false
		}
		t = t.UTC()
		days := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC).Unix() / 86400
		return int32(days), true
	}
	return 0, false
}

// decimal converts exactly, rounding half away from zero to the scale
// (as Hive's HiveDecimal does); values with more integer digits than
// precision-scale are refused.
func (w *writer) decimal(c *column, v any) (parquet.Value, error) {
	var s string
	switch x := v.(type) {
	case json.Number:
		s = string(x)
	case string:
		s = strings.TrimSpace(x)
	default:
		return parquet.Value{}, malformed(c, v, "a decimal number")
	}
	r, ok := w.rat.SetString(s)
	if !ok {
		return parquet.Value{}, malformed(c, v, "a decimal number")
	}
	r.Mul(r, c.scaleFactor)
	n := w.bigN.Quo(r.Num(), r.Denom()) // truncates toward zero
	rem := w.bigR.Rem(r.Num(), r.Denom())
	if rem.Sign() != 0 {
		rem.Abs(rem).Lsh(rem, 1)
		if rem.Cmp(w.bigD.Abs(r.Denom())) >= 0 {
			if r.Sign() < 0 {
				n.Sub(n, big.NewInt(1))
			} else {
				n.Add(n, big.NewInt(1))
			}
		}
	}
	if w.bigA.Abs(n).Cmp(c.maxUnscaled) >= 0 {
		return parquet.Value{}, malformed(c, v, fmt.Sprintf("a decimal(%d,%d) (too many digits)", c.precision, c.scale))
	}
	switch {
	case c.precision <= 9:
		return parquet.Int32Value(int32(n.Int64())), nil
	case c.precision <= 18:
		return parquet.Int64Value(n.Int64()), nil
	}
	return parquet.FixedLenByteArrayValue(twosComplement16(n)), nil
}

// twosComplement16 is n as a 16-byte big-endian two's complement integer.
func twosComplement16(n *big.Int) []byte {
	b := make([]byte, decimalBytes)
	if n.Sign() >= 0 {
		n.FillBytes(b)
		return b
	}
	// -n-1 complemented bitwise is n.
	m := new(big.Int).Neg(n)
	m.Sub(m, big.NewInt(1))
	m.FillBytes(b)
	for i := range b {
		b[i] = ^b[i]
	}
	return b
}
