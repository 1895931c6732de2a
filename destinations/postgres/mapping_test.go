package postgres

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/sluice-dev/sluice/destinations/internal/jsonscan"
	"math"
	"math/big"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/sluice-dev/sluice/pipeline"
)

// optionErrors flattens a joined error into key: message pairs.
func optionErrors(t *testing.T, err error) map[string]string {
	t.Helper()
	out := map[string]string{}
	var list []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	} else if err != nil {
		list = []error{err}
	}
	for _, e := range list {
		var oe *pipeline.OptionError
		if !errors.As(e, &oe) {
			t.Fatalf("not an OptionError: %v", e)
		}
		if _, dup := out[oe.Key]; dup {
			t.Fatalf("two errors for %s: %v", oe.Key, err)
		}
		out[oe.Key] = oe.Err.Error()
	}
	return out
}

func TestCompileMappingErrors(t *testing.T) {
	long := strings.Repeat("x", 64)
	cases := []struct {
		name string
		cols []Column
		want map[string]string // key: substring of its message
	}{
		{"none", nil, map[string]string{"columns": "at least one column"}},
		{"empty name", []Column{{Type: "text"}}, map[string]string{"columns[0].name": "needs a name"}},
		{"long name", []Column{{Name: long}}, map[string]string{"columns[0].name": "longer than 63 bytes"}},
		{"nul name", []Column{{Name: "a\x00b"}}, map[string]string{"columns[0].name": "without NUL"}},
		{"duplicate", []Column{{Name: "id"}, {Name: "ID"}, {Name: "id", Type: "text"}},
			map[string]string{"columns[2].name": `duplicate column "id" (also columns[0]`}},
		{"unknown type", []Column{{Name: "a", Type: "varchar"}}, map[string]string{"columns[0].type": `unknown type "varchar"`}},
		{"timestamp without zone", []Column{{Name: "a", Type: "timestamp"}}, map[string]string{"columns[0].type": "supported: text"}},
		{"jsonb array", []Column{{Name: "a", Type: "jsonb[]"}}, map[string]string{"columns[0].type": `unknown type "jsonb[]"`}},
		{"2-d array", []Column{{Name: "a", Type: "int[][]"}}, map[string]string{"columns[0].type": "unknown type"}},
		{"format on integer", []Column{{Name: "a", Type: "integer", Format: "hex"}},
			map[string]string{"columns[0].format": "type integer takes no format"}},
		{"bad timestamp format", []Column{{Name: "a", Type: "timestamptz", Format: "epoch_us"}},
			map[string]string{"columns[0].format": `unknown timestamptz format "epoch_us"`}},
		{"bad bytea format", []Column{{Name: "a", Type: "bytea[]", Format: "base32"}},
			map[string]string{"columns[0].format": `unknown bytea format "base32"`}},
		{"all at once", []Column{{Name: "a", Path: "a..b"}, {Name: "", Type: "nope", Path: "x["}, {Name: "a", Type: "date", Format: "rfc3339"}},
			map[string]string{"columns[0].path": "empty key", "columns[1].name": "needs a name", "columns[1].type": `"nope"`,
				"columns[1].path": "unterminated [", "columns[2].name": "duplicate", "columns[2].format": "date takes no format"}},
	}
	for _, p := range []struct{ path, msg string }{
		{"a.", "ends with a dot"}, {"a[", "unterminated ["}, {"a[-1]", "bad array index"}, {"a[x]", "bad array index"},
		{`a["x"`, `["key"]`}, {`a["x\q"]`, "bad quoted key"}, {"a b", "expected . or ["}, {" a", "unexpected"}, {"[0]x", "expected . or ["},
		{"a.[0]", "followed by a key"}, {"a]", "expected . or ["}, {"..a", "empty key"},
	} {
		cases = append(cases, struct {
			name string
			cols []Column
			want map[string]string
		}{"path " + p.path, []Column{{Name: "c", Path: p.path}}, map[string]string{"columns[0].path": p.msg}})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := CompileMapping(tc.cols)
			if err == nil || m != nil {
				t.Fatalf("CompileMapping(%+v) = %v, %v; want errors", tc.cols, m, err)
			}
			got := optionErrors(t, err)
			if len(got) != len(tc.want) {
				t.Fatalf("errors %v, want keys of %v", got, tc.want)
			}
			for k, sub := range tc.want {
				if !strings.Contains(got[k], sub) {
					t.Errorf("%s: %q does not contain %q", k, got[k], sub)
				}
			}
		})
	}
}

func TestCompileMappingNormalises(t *testing.T) {
	m, err := CompileMapping([]Column{
		{Name: "ID", Type: "INT8", Required: true},
		{Name: "id", Type: " Double   Precision ", Path: "x[2].y"},
		{Name: "t", Type: "Timestamp With Time Zone"},
		{Name: "a.b", Type: "int[]"},
		{Name: `we"ird`, Type: "bytea", Format: "HEX", Path: `.m["k.1"]`},
		{Name: "doc"},
		{Name: "f", Type: "float4[]"},
		{Name: "b", Type: "bool"}, {Name: "n", Type: "decimal"}, {Name: "s", Type: "int2"},
		{Name: "ts", Type: "timestamptz[]", Format: "epoch_ms"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []Column{
		{Name: "ID", Path: "ID", Type: "bigint", Required: true},
		{Name: "id", Path: "x[2].y", Type: "double precision"},
		{Name: "t", Path: "t", Type: "timestamptz", Format: "auto"},
		{Name: "a.b", Path: `["a.b"]`, Type: "integer[]"},
		{Name: `we"ird`, Path: `.m["k.1"]`, Type: "bytea", Format: "hex"},
		{Name: "doc", Path: "doc", Type: "jsonb"},
		{Name: "f", Path: "f", Type: "real[]"},
		{Name: "b", Path: "b", Type: "boolean"}, {Name: "n", Path: "n", Type: "numeric"}, {Name: "s", Path: "s", Type: "smallint"},
		{Name: "ts", Path: "ts", Type: "timestamptz[]", Format: "epoch_ms"},
	}
	if got := m.Columns(); !reflect.DeepEqual(got, want) {
		t.Errorf("Columns() =\n%+v\nwant\n%+v", got, want)
	}
	wantDDL := []string{`"ID" bigint NOT NULL`, `"id" double precision`, `"t" timestamptz`, `"a.b" integer[]`,
		`"we""ird" bytea`, `"doc" jsonb`, `"f" real[]`, `"b" boolean`, `"n" numeric`, `"s" smallint`, `"ts" timestamptz[]`}
	if got := m.ColumnDDL(); !reflect.DeepEqual(got, wantDDL) {
		t.Errorf("ColumnDDL() = %q", got)
	}
	if got := m.Names(); !reflect.DeepEqual(got, []string{"ID", "id", "t", "a.b", `we"ird`, "doc", "f", "b", "n", "s", "ts"}) {
		t.Errorf("Names() = %q", got)
	}
	if m.WholeJSON() {
		t.Error("WholeJSON() for a mapped mapping")
	}
	for _, tc := range []struct {
		cols  []Column
		whole bool
	}{
		{[]Column{{Name: "d", Path: "."}}, true},
		{[]Column{{Name: "d", Path: ".", Type: "json", Required: true}}, true},
		{[]Column{{Name: "d", Path: ".", Type: "text"}}, false},
		{[]Column{{Name: "d"}}, false},
		{[]Column{{Name: "d", Path: "."}, {Name: "e", Path: "."}}, false},
	} {
		m, err := CompileMapping(tc.cols)
		if err != nil || m.WholeJSON() != tc.whole {
			t.Errorf("CompileMapping(%+v): WholeJSON = %v (err %v), want %v", tc.cols, m != nil && m.WholeJSON(), err, tc.whole)
		}
	}
	w := WholeRecord("data")
	if !w.WholeJSON() || !reflect.DeepEqual(w.ColumnDDL(), []string{`"data" jsonb`}) ||
		!reflect.DeepEqual(w.Columns(), []Column{{Name: "data", Path: ".", Type: "jsonb"}}) {
		t.Errorf("WholeRecord: %v %q %+v", w.WholeJSON(), w.ColumnDDL(), w.Columns())
	}
}

func TestParsePath(t *testing.T) {
	for path, want := range map[string]string{
		"a": "a", ".a.b": "a.b", "a[0].b": "a[0].b", `a["odd.key"]`: `a["odd.key"]`, `["x"][3][12]`: "x[3][12]",
		`a["\u00e9 t"].c`: `a["é t"].c`, "é.ü": "é.ü", "[0]": "[0]", `a["b"]`: "a.b", `["a]b"]`: `["a]b"]`,
	} {
		segs, err := parsePath(path)
		if err != nil {
			t.Errorf("parsePath(%q): %v", path, err)
			continue
		}
		if got := renderPath(segs); got != want {
			t.Errorf("parsePath(%q) renders %q, want %q", path, got, want)
		}
		again, err := parsePath(renderPath(segs))
		if err != nil || !reflect.DeepEqual(again, segs) {
			t.Errorf("%q does not round-trip: %v %v", path, again, err)
		}
	}
}

func mustMapping(t testing.TB, cols ...Column) *Mapping {
	t.Helper()
	m, err := CompileMapping(cols)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func num(s string, exp int32) pgtype.Numeric {
	n, _ := new(big.Int).SetString(s, 10)
	return pgtype.Numeric{Int: n, Exp: exp, Valid: true}
}

func ts(s string) pgtype.Timestamptz {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return pgtype.Timestamptz{Time: t, Valid: true}
}

// same compares Row values: numerics by digits and exponent, times as
// instants, floats by bits (NaN, -0).
func same(got, want any) bool {
	switch w := want.(type) {
	case pgtype.Numeric:
		g, ok := got.(pgtype.Numeric)
		if !ok || g.Valid != w.Valid || g.NaN != w.NaN || g.InfinityModifier != w.InfinityModifier || g.Exp != w.Exp {
			return false
		}
		return (g.Int == nil) == (w.Int == nil) && (g.Int == nil || g.Int.Cmp(w.Int) == 0)
	case pgtype.Timestamptz:
		g, ok := got.(pgtype.Timestamptz)
		return ok && g.Valid == w.Valid && g.InfinityModifier == w.InfinityModifier && g.Time.Equal(w.Time)
	case pgtype.Date:
		g, ok := got.(pgtype.Date)
		return ok && g.Valid == w.Valid && g.InfinityModifier == w.InfinityModifier && g.Time.Equal(w.Time)
	case float64:
		g, ok := got.(float64)
		return ok && math.Float64bits(g) == math.Float64bits(w)
	case float32:
		g, ok := got.(float32)
		return ok && math.Float32bits(g) == math.Float32bits(w)
	case pgtype.FlatArray[any]:
		g, ok := got.(pgtype.FlatArray[any])
		if !ok || g == nil || len(g) != len(w) {
			return false
		}
		for i := range w {
			if !same(g[i], w[i]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(got, want)
}

func TestRowConversions(t *testing.T) {
	type conv struct {
		typ, format, json string
		want              any    // when err is ""
		err               string // substring of the error
	}
	oor := "out of range for type "
	cases := []conv{
		{"smallint", "", "32767", int16(32767), ""}, {"smallint", "", "-32768", int16(-32768), ""},
		{"smallint", "", "32768", nil, oor + "smallint"}, {"int2", "", "-32769", nil, oor + "smallint"},
		{"integer", "", "2147483647", int32(2147483647), ""}, {"integer", "", "-2147483648", int32(-2147483648), ""},
		{"integer", "", "2147483648", nil, oor + "integer"}, {"integer", "", "-2147483649", nil, oor + "integer"},
		{"integer", "", "1.5", nil, "1.5\" is not an integer"}, {"integer", "", `"42"`, int32(42), ""},
		{"integer", "", `"4.2e1"`, int32(42), ""}, {"integer", "", `" 42"`, nil, "want a number"},
		{"integer", "", `"0x10"`, nil, "want a number"}, {"integer", "", `"+1"`, nil, "want a number"},
		{"integer", "", "true", nil, "want a number or a numeric string, got a boolean"},
		{"integer", "", "[1]", nil, "got an array"}, {"integer", "", `""`, nil, "want a number"},
		{"bigint", "", "9223372036854775807", int64(math.MaxInt64), ""},
		{"bigint", "", "-9223372036854775808", int64(math.MinInt64), ""},
		{"bigint", "", "9223372036854775808", nil, oor + "bigint"}, {"bigint", "", "-9223372036854775809", nil, oor + "bigint"},
		{"bigint", "", "9007199254740993", int64(9007199254740993), ""}, {"bigint", "", "1e3", int64(1000), ""},
		{"bigint", "", "1000.000", int64(1000), ""}, {"bigint", "", "1E+2", int64(100), ""}, {"bigint", "", "-0", int64(0), ""},
		{"bigint", "", "-0.0e-5", int64(0), ""}, {"bigint", "", "0e99999999999999999999", int64(0), ""},
		{"bigint", "", "12345678901234567890e-1", int64(1234567890123456789), ""},
		{"bigint", "", "1e19", nil, oor + "bigint"}, {"bigint", "", "1e99999999999999999999", nil, oor + "bigint"},
		{"bigint", "", "25e-1", nil, "not an integer"}, {"bigint", "", "1e-99999999999999999999", nil, "not an integer"},
		{"numeric", "", "12345678901234567890.123456789", num("12345678901234567890123456789", -9), ""},
		{"numeric", "", "1.50", num("150", -2), ""}, {"numeric", "", "1.5e3", num("15", 2), ""},
		{"numeric", "", "-0.00", num("0", -2), ""}, {"numeric", "", "0e10", num("0", 0), ""},
		{"numeric", "", `"-7.25"`, num("-725", -2), ""}, {"numeric", "", "-1e-16383", num("-1", -16383), ""},
		{"numeric", "", `"NaN"`, pgtype.Numeric{NaN: true, Valid: true}, ""},
		{"numeric", "", `"Infinity"`, pgtype.Numeric{InfinityModifier: pgtype.Infinity, Valid: true}, ""},
		{"numeric", "", `"-inf"`, pgtype.Numeric{InfinityModifier: pgtype.NegativeInfinity, Valid: true}, ""},
		{"numeric", "", "1e-16384", nil, "more than 16383 digits after"}, {"numeric", "", "1e131072", nil, "more than 131072 digits before"},
		{"numeric", "", `"1,5"`, nil, "want a number"}, {"numeric", "", "{}", nil, "got an object"},
		{"double", "", "0.1", 0.1, ""}, {"double", "", "-0", math.Copysign(0, -1), ""}, {"float8", "", "1e308", 1e308, ""},
		{"double", "", "5e-324", 5e-324, ""}, {"double", "", "1e309", nil, oor + "double precision"},
		{"double", "", "1e-400", nil, oor + "double precision"}, {"double", "", `"NaN"`, math.NaN(), ""},
		{"double", "", `"-Infinity"`, math.Inf(-1), ""}, {"double", "", "9007199254740993", 9007199254740992.0, ""},
		{"real", "", "3.4028235e38", float32(math.MaxFloat32), ""}, {"real", "", "3.5e38", nil, oor + "real"},
		{"real", "", "0.1", float32(0.1), ""}, {"real", "", "1e-50", nil, oor + "real"},
		{"boolean", "", "true", true, ""}, {"bool", "", "false", false, ""}, {"boolean", "", `"true"`, true, ""},
		{"boolean", "", `"false"`, false, ""}, {"boolean", "", "1", nil, "want true or false, got a number"},
		{"boolean", "", `"yes"`, nil, "want true or false"},
		{"text", "", `"héllo 😀"`, "héllo 😀", ""}, {"text", "", "42.50", "42.50", ""}, {"text", "", `{"a": [1, 2]}`, `{"a": [1, 2]}`, ""},
		{"text", "", "true", "true", ""}, {"text", "", `"a\"b\\c\/d\n\t\u00e9\ud83d\ude00"`, "a\"b\\c/d\n\té😀", ""},
		{"text", "", `""`, "", ""}, {"text", "", `"a\u0000b"`, nil, "\\u0000"}, {"text", "", `"\ud800x"`, nil, "lone"},
		{"text", "", "\"\xff\"", nil, "not valid UTF-8"}, {"text", "", "[\"\xff\"]", nil, "not valid UTF-8"},
		{"jsonb", "", `{"b": [1, 2.50, "x"]}`, []byte(`{"b": [1, 2.50, "x"]}`), ""}, {"json", "", `"s"`, []byte(`"s"`), ""},
		{"jsonb", "", `"a\u0000b"`, []byte(`"a\u0000b"`), ""}, {"jsonb", "", "\"\xfe\"", nil, "not valid UTF-8"},
		{"timestamptz", "", `"2020-01-02T03:04:05.123456789+05:30"`, ts("2020-01-01T21:34:05.123456Z"), ""},
		{"timestamptz", "rfc3339", `"2020-01-02 03:04:05Z"`, ts("2020-01-02T03:04:05Z"), ""},
		{"timestamptz", "", `"2020-01-02t03:04:05.5z"`, ts("2020-01-02T03:04:05.5Z"), ""},
		{"timestamptz", "", `"1969-12-31T23:59:59.9999999-00:00"`, ts("1969-12-31T23:59:59.999999Z"), ""},
		{"timestamptz", "", `"2020-01-02T03:04:05"`, nil, "with a zone offset"},
		{"timestamptz", "", `"2020-01-02T25:04:05Z"`, nil, "hour out of range"},
		{"timestamptz", "", `"infinity"`, pgtype.Timestamptz{InfinityModifier: pgtype.Infinity, Valid: true}, ""},
		{"timestamptz", "epoch_s", `"-Infinity"`, pgtype.Timestamptz{InfinityModifier: pgtype.NegativeInfinity, Valid: true}, ""},
		{"timestamptz", "", "1700000000", ts("2023-11-14T22:13:20Z"), ""},
		{"timestamptz", "", "99999999999", ts("5138-11-16T09:46:39Z"), ""},
		{"timestamptz", "", "100000000000", ts("1973-03-03T09:46:40Z"), ""},
		{"timestamptz", "auto", "1700000000123", ts("2023-11-14T22:13:20.123Z"), ""},
		{"timestamptz", "", "1700000000.5", ts("2023-11-14T22:13:20.5Z"), ""},
		{"timestamptz", "epoch_ms", "1700000000123.4567", ts("2023-11-14T22:13:20.123456Z"), ""},
		{"timestamptz", "epoch_ms", "1.7e12", ts("2023-11-14T22:13:20Z"), ""},
		{"timestamptz", "epoch_s", "-1.5000005", ts("1969-12-31T23:59:58.499999Z"), ""},
		{"timestamptz", "epoch_s", `"1700000000"`, ts("2023-11-14T22:13:20Z"), ""},
		{"timestamptz", "epoch_s", `"2020-01-01T00:00:00Z"`, nil, "want a number"},
		{"timestamptz", "rfc3339", "1700000000", nil, "want an RFC 3339 timestamp string, got a number"},
		{"timestamptz", "epoch_s", "1e300", nil, oor + "timestamptz"},
		{"timestamptz", "epoch_s", "-300000000000", nil, oor + "timestamptz"},
		{"timestamptz", "epoch_ms", "-210866803200000", pgtype.Timestamptz{Time: time.UnixMicro(pgMinUnixMicro), Valid: true}, ""},
		{"timestamptz", "epoch_ms", "-210866803200000.001", nil, oor + "timestamptz"},
		{"timestamptz", "epoch_ms", "-9223372036854775808", nil, oor + "timestamptz"},
		{"timestamptz", "epoch_s", "9223372036854.775807", pgtype.Timestamptz{Time: time.UnixMicro(math.MaxInt64), Valid: true}, ""},
		{"timestamptz", "epoch_s", "9223372036854.775808", nil, oor + "timestamptz"},
		{"timestamptz", "", "true", nil, "got a boolean"},
		{"date", "", `"2020-02-29"`, pgtype.Date{Time: time.Date(2020, 2, 29, 0, 0, 0, 0, time.UTC), Valid: true}, ""},
		{"date", "", `"0001-01-01"`, pgtype.Date{Time: time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), Valid: true}, ""},
		{"date", "", `"-infinity"`, pgtype.Date{InfinityModifier: pgtype.NegativeInfinity, Valid: true}, ""},
		{"date", "", `"2021-02-29"`, nil, "is not a date"}, {"date", "", `"2020-1-1"`, nil, "is not a date"},
		{"date", "", `"2020-01-01T00:00:00Z"`, nil, "is not a date"}, {"date", "", "20200101", nil, "want a date string, got a number"},
		{"bytea", "", `"AAEC/w=="`, []byte{0, 1, 2, 255}, ""}, {"bytea", "base64", `"AAEC/w"`, []byte{0, 1, 2, 255}, ""},
		{"bytea", "", `""`, []byte{}, ""}, {"bytea", "", `"!!!!"`, nil, "bad base64"}, {"bytea", "", `"AAE=C"`, nil, "bad base64"},
		{"bytea", "hex", `"\\x00fF"`, []byte{0, 255}, ""}, {"bytea", "hex", `"00FF10"`, []byte{0, 255, 16}, ""},
		{"bytea", "hex", `"0g"`, nil, "bad hex"}, {"bytea", "hex", `"abc"`, nil, "bad hex"},
		{"bytea", "text", `"a\u0000é"`, []byte("a\x00é"), ""}, {"bytea", "", "12", nil, "want a string, got a number"},
		{"uuid", "", `"0f8fad5b-d9cb-469f-a165-70867728950e"`, uuid("0f8fad5bd9cb469fa16570867728950e"), ""},
		{"uuid", "", `"0F8FAD5B-D9CB-469F-A165-70867728950E"`, uuid("0f8fad5bd9cb469fa16570867728950e"), ""},
		{"uuid", "", `"0f8fad5bd9cb469fa16570867728950e"`, nil, "is not a UUID"},
		{"uuid", "", `"0f8fad5b-d9cb-469f-a165-70867728950g"`, nil, "is not a UUID"}, {"uuid", "", "1", nil, "want a UUID string"},
		{"bigint[]", "", "[1, null, -3]", pgtype.FlatArray[any]{int64(1), nil, int64(-3)}, ""},
		{"bigint[]", "", "[]", pgtype.FlatArray[any]{}, ""}, {"int[]", "", "[1, [2]]", nil, "element 1: nested arrays"},
		{"int[]", "", `[1, "x"]`, nil, "element 1: want a number"}, {"text[]", "", `"x"`, nil, "want a JSON array, got a string"},
		{"text[]", "", `["a", null, 1, [2]]`, pgtype.FlatArray[any]{"a", nil, "1", "[2]"}, ""},
		{"timestamptz[]", "epoch_ms", `[0, null]`, pgtype.FlatArray[any]{ts("1970-01-01T00:00:00Z"), nil}, ""},
		{"bytea[]", "hex", `["01", null]`, pgtype.FlatArray[any]{[]byte{1}, nil}, ""},
	}
	for _, tc := range cases {
		name := fmt.Sprintf("%s/%s/%s", tc.typ, tc.format, tc.json)
		m := mustMapping(t, Column{Name: "v", Type: tc.typ, Format: tc.format})
		rec := []byte(`{"v": ` + tc.json + `}`)
		got, err := m.Row(rec, nil)
		switch {
		case tc.err != "" && err == nil:
			t.Errorf("%s: got %#v, want error containing %q", name, got, tc.err)
		case tc.err != "" && !strings.Contains(err.Error(), tc.err):
			t.Errorf("%s: error %q does not contain %q", name, err, tc.err)
		case tc.err != "" && !strings.HasPrefix(err.Error(), `column "v" (path v): `):
			t.Errorf("%s: error %q does not name the column", name, err)
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", name, err)
		case tc.err == "" && (len(got) != 1 || !same(got[0], tc.want)):
			t.Errorf("%s: got %#v, want %#v", name, got, tc.want)
		}
	}
}

func uuid(h string) pgtype.UUID {
	u := pgtype.UUID{Valid: true}
	hex.Decode(u.Bytes[:], []byte(h))
	return u
}

func TestRowPaths(t *testing.T) {
	m := mustMapping(t,
		Column{Name: "id", Type: "bigint", Required: true},
		Column{Name: "city", Path: "user.address.city", Type: "text"},
		Column{Name: "sku", Path: "items[1].sku", Type: "text"},
		Column{Name: "odd", Path: `m["a.b"]`, Type: "integer"},
		Column{Name: "é", Type: "text"},
		Column{Name: "user", Type: "jsonb"},
		Column{Name: "all", Path: ".", Type: "json"},
	)
	full := ` {"id": 7, "user": {"name": "x", "address": {"zip": "1", "city": "Zürich"}}, "items": [{"sku": "a"}, {"sku": "b", "n": [1, {"sku": "no"}]}],
		"m": {"a": {"b": 1}, "a.b": 2}, "\u00e9": "acc", "skip": [[{"}": "]"}], "\"", {"x": "\\"}]}` + "\n"
	cases := []struct {
		rec  string
		want []any // nil: want err
		err  string
	}{
		{full, []any{int64(7), "Zürich", "b", int32(2), "acc",
			[]byte(`{"name": "x", "address": {"zip": "1", "city": "Zürich"}}`), []byte(strings.TrimSpace(full))}, ""},
		{`{"id": 1}`, []any{int64(1), nil, nil, nil, nil, nil, []byte(`{"id": 1}`)}, ""},
		{`{"\u0069d": 1, "user": null, "items": [], "m": null}`, []any{int64(1), nil, nil, nil, nil, nil,
			[]byte(`{"\u0069d": 1, "user": null, "items": [], "m": null}`)}, ""},
		{`{"id": 1, "items": [null, null], "user": {"address": null}}`, []any{int64(1), nil, nil, nil, nil,
			[]byte(`{"address": null}`), []byte(`{"id": 1, "items": [null, null], "user": {"address": null}}`)}, ""},
		{`{"id": 1, "id": 2, "user": {"address": {"city": "A"}}, "user": {"name": "y"}}`, []any{int64(2), nil, nil, nil, nil,
			[]byte(`{"name": "y"}`), []byte(`{"id": 1, "id": 2, "user": {"address": {"city": "A"}}, "user": {"name": "y"}}`)}, ""},
		{`{"id": 1, "user": {"address": 5}}`, nil, `column "city" (path user.address.city): user.address is a number, not an object`},
		{`{"id": 1, "items": {"1": {"sku": "x"}}}`, nil, `column "sku" (path items[1].sku): items is an object, not an array`},
		{`{"id": 1, "items": [1, "s"]}`, nil, `column "sku" (path items[1].sku): items[1] is a string, not an object`},
		{`{"id": 1, "user": [1]}`, nil, `column "city" (path user.address.city): user is an array, not an object`},
		{`[1, 2]`, nil, `column "id" (path id): the record is an array, not an object`},
		{`"id"`, nil, `column "id" (path id): the record is a string, not an object`},
		{`null`, nil, `column "id" (path id): the record is null, not an object`},
		{`{"user": {}}`, nil, `column "id" (path id): required value is missing`},
		{`{"id": null}`, nil, `column "id" (path id): required value is null`},
		{`{"id": 1,}`, nil, "record is not valid JSON: invalid character '}' looking for beginning of object key string at offset 10"},
		{`{"id": 1} {}`, nil, "record is not valid JSON"},
		{" \n", nil, "record is empty"},
	}
	for _, tc := range cases {
		dst := []any{"keep"}
		got, err := m.Row([]byte(tc.rec), dst)
		if tc.want == nil {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Row(%s): error %v, want %q", tc.rec, err, tc.err)
			}
			if len(got) != 1 || got[0] != "keep" {
				t.Errorf("Row(%s) failed but returned %v", tc.rec, got)
			}
			continue
		}
		if err != nil {
			t.Errorf("Row(%s): %v", tc.rec, err)
			continue
		}
		if !reflect.DeepEqual(got, append([]any{"keep"}, tc.want...)) {
			t.Errorf("Row(%s) =\n%#v\nwant\n%#v", tc.rec, got, tc.want)
		}
	}

	arr := mustMapping(t, Column{Name: "x", Path: "[1].a", Type: "text"}, Column{Name: "y", Path: "[0][2]", Type: "bigint"})
	if got, err := arr.Row([]byte(`[[5, 6, 7], {"a": "q"}]`), nil); err != nil || !reflect.DeepEqual(got, []any{"q", int64(7)}) {
		t.Errorf("root array: %#v %v", got, err)
	}
	if _, err := arr.Row([]byte(`{"a": 1}`), nil); err == nil || !strings.Contains(err.Error(), "the record is an object, not an array") {
		t.Errorf("root object for an array path: %v", err)
	}
}

func TestRowErrorsQuoteLittle(t *testing.T) {
	big := strings.Repeat("x", 10000)
	m := mustMapping(t, Column{Name: "t", Type: "timestamptz"}, Column{Name: "n", Type: "numeric"})
	for _, rec := range []string{
		`{"t": "` + big + `"}`, `{"n": "` + big + `"}`, `{"n": 1` + strings.Repeat("0", 200000) + `}`, `{"t": "` + big + `", }`, big,
	} {
		_, err := m.Row([]byte(rec), nil)
		if err == nil {
			t.Fatalf("Row accepted %.40s...", rec)
		}
		if len(err.Error()) > 200 || strings.Contains(err.Error(), strings.Repeat("x", 41)) {
			t.Errorf("error quotes too much of the record (%d bytes): %.300s", len(err.Error()), err)
		}
	}
}

func TestRowWholeJSON(t *testing.T) {
	m := WholeRecord("data")
	req := mustMapping(t, Column{Name: "d", Path: ".", Type: "jsonb", Required: true})
	rec := []byte(" {\"a\": [1, 2.50, \"é\"]}\r\n")
	got, err := m.Row(rec, []any{1})
	if err != nil || len(got) != 2 || !bytes.Equal(got[1].([]byte), rec[1:len(rec)-2]) {
		t.Fatalf("Row = %#v, %v", got, err)
	}
	if got, err := m.Row([]byte("null"), nil); err != nil || !reflect.DeepEqual(got, []any{nil}) {
		t.Errorf("null record: %#v %v", got, err)
	}
	if _, err := req.Row([]byte(" null "), nil); err == nil || !strings.Contains(err.Error(), "required value is null") {
		t.Errorf("required null record: %v", err)
	}
	for rec, want := range map[string]string{`{"a":`: "not valid JSON", "\"\xff\"": "not valid UTF-8", "": "record is empty", "{} x": "not valid JSON"} {
		if got, err := m.Row([]byte(rec), nil); err == nil || !strings.Contains(err.Error(), want) || len(got) != 0 {
			t.Errorf("Row(%q) = %v, %v; want error %q", rec, got, err, want)
		}
	}
}

func TestRowConcurrent(t *testing.T) {
	m := mustMapping(t, Column{Name: "a", Type: "bigint"}, Column{Name: "b", Path: "x.b", Type: "text"})
	errs := make(chan error, 4)
	for g := range 4 {
		go func() {
			var dst []any
			for i := range 2000 {
				rec := fmt.Sprintf(`{"x": {"b": "g%d-%d"}, "a": %d}`, g, i, g*100000+i)
				var err error
				if dst, err = m.Row([]byte(rec), dst[:0]); err != nil {
					errs <- err
					return
				}
				if dst[0] != int64(g*100000+i) || dst[1] != fmt.Sprintf("g%d-%d", g, i) {
					errs <- fmt.Errorf("record %s mapped to %v", rec, dst)
					return
				}
			}
			errs <- nil
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// pgConn connects to the test server with a schema of its own, dropped at
// cleanup.
func pgConn(t *testing.T) (*pgx.Conn, string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, "postgres://root@127.0.0.1:5432/test?sslmode=disable")
	if err != nil {
		t.Fatalf("PostgreSQL at 127.0.0.1:5432 is needed: %v", err)
	}
	var b [6]byte
	rand.Read(b[:])
	schema := "sluice_map_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+quoteIdent(schema)+"; SET TIME ZONE 'UTC'"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+quoteIdent(schema)+" CASCADE"); err != nil {
			t.Errorf("drop schema: %v", err)
		}
		conn.Close(ctx)
	})
	return conn, schema
}

func createTable(t *testing.T, conn *pgx.Conn, schema, table string, m *Mapping) {
	t.Helper()
	ddl := fmt.Sprintf("CREATE TABLE %s.%s (%s)", quoteIdent(schema), quoteIdent(table), strings.Join(m.ColumnDDL(), ", "))
	if _, err := conn.Exec(context.Background(), ddl); err != nil {
		t.Fatalf("%s: %v", ddl, err)
	}
}

// TestRoundTripPostgres loads rows made by Row with binary COPY and reads
// them back as text.
func TestRoundTripPostgres(t *testing.T) {
	ctx := context.Background()
	conn, schema := pgConn(t)
	m := mustMapping(t,
		Column{Name: "id", Type: "bigint", Required: true},
		Column{Name: "s", Type: "smallint"}, Column{Name: "i", Type: "int4"},
		Column{Name: "n", Type: "numeric"}, Column{Name: "r", Type: "real"}, Column{Name: "d", Type: "double"},
		Column{Name: "b", Type: "boolean"}, Column{Name: "Tx", Path: "tx", Type: "text"},
		Column{Name: "ts", Type: "timestamptz"}, Column{Name: "tsm", Type: "timestamptz", Format: "epoch_ms"},
		Column{Name: "dt", Type: "date"}, Column{Name: "j", Path: "obj", Type: "jsonb"}, Column{Name: "js", Path: "obj", Type: "json"},
		Column{Name: "by", Type: "bytea"}, Column{Name: "byh", Type: "bytea", Format: "hex"}, Column{Name: "u", Type: "uuid"},
		Column{Name: "ai", Type: "bigint[]"}, Column{Name: "at", Type: "text[]"}, Column{Name: "an", Type: "numeric[]"},
		Column{Name: "atz", Type: "timestamptz[]"}, Column{Name: "nested", Path: `obj.a[3]["k"]`, Type: "boolean"},
		Column{Name: "whole", Path: ".", Type: "jsonb"},
	)
	createTable(t, conn, schema, "t", m)
	const obj = `{"z": 1, "a": [1, "x", null, {"k": true}], "big": 12345678901234567890.5, "e": "😀\u0301"}`
	recs := []string{
		`{"id": 9007199254740993, "s": -32768, "i": 2147483647, "n": 12345678901234567890.123456789, "r": 0.1, "d": 5e-324,
		  "b": true, "tx": "emoji 😀, e + combining acute: e\u0301, tab\t, quote \"", "ts": "2020-01-02T03:04:05.123456+05:30",
		  "tsm": 1700000000123, "dt": "2020-02-29", "obj": ` + obj + `, "by": "AAEC/w==", "byh": "\\x00ff",
		  "u": "0F8FAD5B-D9CB-469F-A165-70867728950E", "ai": [1, null, -9223372036854775808], "at": ["a", null, "ü", "{x,\"y\"}"],
		  "an": [1.50, null, "NaN", -1e-20], "atz": [1700000000, null, "1999-12-31 23:59:59.999999-08:00"]}`,
		`{"id": 2}`,
		`{"id": -9223372036854775808, "s": 32767, "i": -2147483648, "n": "-0.00", "r": "Infinity", "d": -0, "b": "false",
		  "tx": {"raw":  [1, 2]}, "ts": 1.5, "tsm": -1.5, "dt": "infinity", "obj": null, "by": "", "byh": "", "ai": [], "at": [],
		  "an": ["-Infinity"], "atz": [], "u": null}`,
		`{"id": 3, "n": 1e-20, "d": 1.7976931348623157e308, "r": 3.4028235e38, "ts": "0001-01-01T00:00:00Z", "tsm": 253402300799999,
		  "tx": "", "dt": "0001-01-01", "n2": "ignored", "ai": [9223372036854775807]}`,
	}
	var rows [][]any
	for _, r := range recs {
		row, err := m.Row([]byte(r), nil)
		if err != nil {
			t.Fatalf("Row(%s): %v", r, err)
		}
		rows = append(rows, row)
	}
	if n, err := conn.CopyFrom(ctx, pgx.Identifier{schema, "t"}, m.Names(), pgx.CopyFromRows(rows)); err != nil || n != int64(len(rows)) {
		t.Fatalf("CopyFrom: %d rows, %v", n, err)
	}

	const null = "<NULL>"
	jsonbCols := map[string]bool{"j": true, "whole": true}
	want := map[string][]string{ // id order: -9223372036854775808, 2, 3, 9007199254740993
		"id":     {"-9223372036854775808", "2", "3", "9007199254740993"},
		"s":      {"32767", null, null, "-32768"},
		"i":      {"-2147483648", null, null, "2147483647"},
		"n":      {"0.00", null, "0.00000000000000000001", "12345678901234567890.123456789"},
		"r":      {"Infinity", null, "3.4028235e+38", "0.1"},
		"d":      {"-0", null, "1.7976931348623157e+308", "5e-324"},
		"b":      {"false", null, null, "true"},
		"Tx":     {`{"raw":  [1, 2]}`, null, "", "emoji 😀, e + combining acute: e\u0301, tab\t, quote \""},
		"ts":     {"1970-01-01 00:00:01.5+00", null, "0001-01-01 00:00:00+00", "2020-01-01 21:34:05.123456+00"},
		"tsm":    {"1969-12-31 23:59:59.9985+00", null, "9999-12-31 23:59:59.999+00", "2023-11-14 22:13:20.123+00"},
		"dt":     {"infinity", null, "0001-01-01", "2020-02-29"},
		"j":      {null, null, null, obj},
		"js":     {null, null, null, obj},
		"by":     {`\x`, null, null, `\x000102ff`},
		"byh":    {`\x`, null, null, `\x00ff`},
		"u":      {null, null, null, "0f8fad5b-d9cb-469f-a165-70867728950e"},
		"ai":     {"{}", null, "{9223372036854775807}", "{1,NULL,-9223372036854775808}"},
		"at":     {"{}", null, null, `{a,NULL,ü,"{x,\"y\"}"}`},
		"an":     {"{-Infinity}", null, null, "{1.50,NULL,NaN,-0.00000000000000000001}"},
		"atz":    {"{}", null, null, `{"2023-11-14 22:13:20+00",NULL,"2000-01-01 07:59:59.999999+00"}`},
		"nested": {null, null, null, "true"},
		"whole":  {recs[2], recs[1], recs[3], recs[0]},
	}
	var sel []string
	for _, n := range m.Names() {
		sel = append(sel, fmt.Sprintf("coalesce(%s::text, '%s')", quoteIdent(n), null))
	}
	q := fmt.Sprintf("SELECT %s FROM %s.t ORDER BY id", strings.Join(sel, ", "), quoteIdent(schema))
	res, err := conn.Query(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(res, func(r pgx.CollectableRow) ([]string, error) {
		vals := make([]string, len(m.Names()))
		ptrs := make([]any, len(vals))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		return vals, r.Scan(ptrs...)
	})
	if err != nil || len(got) != len(recs) {
		t.Fatalf("read back %d rows: %v", len(got), err)
	}
	for c, name := range m.Names() {
		for r := range got {
			g, w := got[r][c], want[name][r]
			if jsonbCols[name] && g != null && w != null {
				var eq bool // jsonb equality: key order, white space and number notation aside
				if err := conn.QueryRow(ctx, "SELECT $1::jsonb = $2::jsonb", g, w).Scan(&eq); err != nil || !eq {
					t.Errorf("row %d column %s: %s, want (as JSON) %s", r, name, g, w)
				}
			} else if g != w {
				t.Errorf("row %d column %s: %q, want %q", r, name, g, w)
			}
		}
	}
}

// TestRoundTripLimits loads the extremes Row accepts for numeric and
// timestamptz: the server must take them all, unchanged.
func TestRoundTripLimits(t *testing.T) {
	ctx := context.Background()
	conn, schema := pgConn(t)
	m := mustMapping(t, Column{Name: "k", Type: "int"}, Column{Name: "n", Type: "numeric"}, Column{Name: "t", Type: "timestamptz", Format: "epoch_s"})
	createTable(t, conn, schema, "lim", m)
	maxT := time.UnixMicro(math.MaxInt64).UTC()
	cases := []struct{ rec, n, t string }{
		{`{"k": 1, "n": 1e-16383, "t": -210866803200}`, "0." + strings.Repeat("0", 16382) + "1", "4714-11-24 00:00:00+00 BC"},
		{`{"k": 2, "n": -9.5e131071, "t": 9223372036854.775807}`, "-95" + strings.Repeat("0", 131070), maxT.Format("2006-01-02 15:04:05.999999") + "+00"},
		{`{"k": 3, "n": "123456789012345678901234567890.000000000000000000000000000001", "t": -0.000001}`,
			"123456789012345678901234567890.000000000000000000000000000001", "1969-12-31 23:59:59.999999+00"},
	}
	var rows [][]any
	for _, c := range cases {
		row, err := m.Row([]byte(c.rec), nil)
		if err != nil {
			t.Fatalf("Row(%s): %v", c.rec, err)
		}
		rows = append(rows, row)
	}
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{schema, "lim"}, m.Names(), pgx.CopyFromRows(rows)); err != nil {
		t.Fatal(err)
	}
	for i, c := range cases {
		var n, ts string
		if err := conn.QueryRow(ctx, fmt.Sprintf("SELECT n::text, t::text FROM %s.lim WHERE k = $1", quoteIdent(schema)), i+1).Scan(&n, &ts); err != nil {
			t.Fatal(err)
		}
		if n != c.n || ts != c.t {
			t.Errorf("%s read back n %.40s... (%d bytes), t %q; want %.40s... (%d bytes), %q", c.rec, n, len(n), ts, c.n, len(c.n), c.t)
		}
	}
}

// TestRoundTripServerRejects documents what the server refuses that Row
// passes on: jsonb cannot hold \u0000 (22P05) nor a lone surrogate (22P02);
// json keeps both as text.
func TestRoundTripServerRejects(t *testing.T) {
	ctx := context.Background()
	conn, schema := pgConn(t)
	for i, tc := range []struct {
		typ, value, code string
	}{
		{"jsonb", `"a\u0000b"`, "22P05"}, {"jsonb", `{"k": ["\ud800"]}`, "22P02"},
		{"json", `"a\u0000b"`, ""}, {"json", `{"k": ["\ud800"]}`, ""},
	} {
		m := mustMapping(t, Column{Name: "v", Type: tc.typ})
		table := fmt.Sprintf("r%d", i)
		createTable(t, conn, schema, table, m)
		row, err := m.Row([]byte(`{"v": `+tc.value+`}`), nil)
		if err != nil {
			t.Fatalf("Row for %s %s: %v", tc.typ, tc.value, err)
		}
		_, err = conn.CopyFrom(ctx, pgx.Identifier{schema, table}, m.Names(), pgx.CopyFromRows([][]any{row}))
		var pe *pgconn.PgError
		switch {
		case tc.code == "" && err != nil:
			t.Errorf("%s %s: %v", tc.typ, tc.value, err)
		case tc.code == "":
			var back string
			if err := conn.QueryRow(ctx, fmt.Sprintf("SELECT v::text FROM %s.%s", quoteIdent(schema), table)).Scan(&back); err != nil || back != tc.value {
				t.Errorf("%s %s read back %q, %v", tc.typ, tc.value, back, err)
			}
		case !errors.As(err, &pe) || pe.Code != tc.code:
			t.Errorf("%s %s: got %v, want SQLSTATE %s", tc.typ, tc.value, err, tc.code)
		default:
			t.Logf("%s %s: server says %s %s (%s)", tc.typ, tc.value, pe.Code, pe.Message, pe.Detail)
		}
	}
}

// benchRecord is a record of about 1 KiB.
func benchRecord(b *testing.B) []byte {
	rec := fmt.Sprintf(`{"id": 1234567890123, "ts": "2024-05-06T07:08:09.123456Z", "user": {"name": "Ada Lovelace", "email": "ada@example.com",
 "address": {"city": "London", "zip": "W1", "lines": ["12 Some Street", "Flat 3"]}}, "amount": 12345.67, "qty": 42, "ok": true,
 "tags": ["a", "b", "c", "d"], "uuid": "0f8fad5b-d9cb-469f-a165-70867728950e", "payload": %q, "items": [%s]}`,
		strings.Repeat("lorem ipsum ", 20), strings.Repeat(`{"sku": "X-1", "n": 3, "price": 9.99}, `, 10)+`{"sku": "last"}`)
	if len(rec) < 900 || len(rec) > 1100 {
		b.Fatalf("record is %d bytes", len(rec))
	}
	return []byte(rec)
}

func BenchmarkRow(b *testing.B) {
	rec := benchRecord(b)
	b.Run("mapped10", func(b *testing.B) {
		m := mustMapping(b, Column{Name: "id", Type: "bigint"}, Column{Name: "ts", Type: "timestamptz"},
			Column{Name: "name", Path: "user.name", Type: "text"}, Column{Name: "city", Path: "user.address.city", Type: "text"},
			Column{Name: "amount", Type: "numeric"}, Column{Name: "qty", Type: "integer"}, Column{Name: "ok", Type: "boolean"},
			Column{Name: "tags", Type: "text[]"}, Column{Name: "uuid", Type: "uuid"}, Column{Name: "sku", Path: "items[1].sku", Type: "text"})
		dst := make([]any, 0, 10)
		b.SetBytes(int64(len(rec)))
		for b.Loop() {
			var err error
			if dst, err = m.Row(rec, dst[:0]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("wholeJSON", func(b *testing.B) {
		m := WholeRecord("data")
		dst := make([]any, 0, 1)
		b.SetBytes(int64(len(rec)))
		for b.Loop() {
			var err error
			if dst, err = m.Row(rec, dst[:0]); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// FuzzRecord checks validJSON against json.Valid, and the values Row finds
// (as jsonb) and converts (as bigint) against encoding/json's decoding.
func FuzzRecord(f *testing.F) {
	for _, s := range []string{`{"a": {"b": [1, {"b": 2}]}, "a.b": "x"}`, `[[1, 2], {"b": null}]`, `{"a": [null, {"b": "\u00e9\"]"}]}`,
		`{"a": 1, "a": {"b": 2e3}}`, `null`, `{"a": -0.5E-7}`, `"x\\"`, `[1, 2,]`, `{"a" 1}`, `01`, `{"b": {"c": {"d": []}}}`, " 1 ", `{"`, `{"a":`, `[`, `-`, `"\u12"`, `[1 2]`} {
		f.Add([]byte(s))
	}
	paths := []string{".", "a", "a.b", "a[0]", "a[1].b", `["a.b"]`, "[0]", "[1][0]", "[1].b", "b.c.d"}
	var all []Column
	for i, p := range paths {
		all = append(all, Column{Name: fmt.Sprint(i), Path: p})
	}
	multi, bigint := mustMapping(f, all...), mustMapping(f, Column{Name: "a", Type: "bigint"})
	f.Fuzz(func(t *testing.T, data []byte) {
		if jsonscan.Valid(data) != json.Valid(data) {
			t.Fatalf("jsonscan.Valid(%q) = %v", data, !json.Valid(data))
		}
		if !json.Valid(data) || !utf8.Valid(data) {
			return
		}
		doc := decodeJSON(t, data)
		wantMulti, multiBad := []any{}, false
		for _, p := range paths {
			segs, _ := parsePath(p)
			want, found, bad := doc, true, false
			for k, s := range segs {
				if want == nil {
					found, bad = false, k == 0
					break
				}
				if m, ok := want.(map[string]any); ok && s.index < 0 {
					want, found = m[s.key]
				} else if a, ok := want.([]any); ok && s.index >= 0 {
					found = s.index < len(a)
					if want = nil; found {
						want = a[s.index]
					}
				} else {
					found, bad = false, true
				}
				if !found {
					break
				}
			}
			multiBad = multiBad || bad
			got, err := mustMapping(t, Column{Name: "v", Path: p}).Row(data, nil)
			switch {
			case bad != (err != nil):
				t.Fatalf("path %s of %s: %v, %v; want mismatch %v", p, data, got, err, bad)
			case bad:
			case !found || want == nil:
				wantMulti = append(wantMulti, nil)
				if got[0] != nil {
					t.Fatalf("path %s of %s: %s, want NULL", p, data, got[0])
				}
			default:
				wantMulti = append(wantMulti, got[0])
				if !reflect.DeepEqual(decodeJSON(t, got[0].([]byte)), want) {
					t.Fatalf("path %s of %s: %s, want %v", p, data, got[0], want)
				}
			}
		}
		if got, err := multi.Row(data, nil); multiBad != (err != nil) || !multiBad && !reflect.DeepEqual(got, wantMulti) {
			t.Fatalf("all paths of %s: %#v, %v; want %#v", data, got, err, wantMulti)
		}
		if m, ok := doc.(map[string]any); ok {
			if n, ok := m["a"].(json.Number); ok && len(n) < 40 && !strings.ContainsAny(string(n), "eE") {
				r, _ := new(big.Rat).SetString(string(n))
				want := r.IsInt() && r.Num().IsInt64()
				got, err := bigint.Row(data, nil)
				if want != (err == nil) || want && got[0] != r.Num().Int64() {
					t.Fatalf("bigint of %s: %v, %v", n, got, err)
				}
			}
		}
	})
}

func decodeJSON(t *testing.T, data []byte) any {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatalf("%s: %v", data, err)
	}
	return v
}
