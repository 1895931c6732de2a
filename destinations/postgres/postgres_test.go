package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/destinations/destinationtest"
	"github.com/sluice-dev/sluice/destinations/internal/pgload"
	"github.com/sluice-dev/sluice/pipeline"
)

// TestConformance runs the destination suite over raw records: one bytea
// column holding each record's bytes, so any record (JSON or not) loads.
func TestConformance(t *testing.T) {
	e := newEnv(t)
	tables := map[string]bool{}
	newDest := func(t *testing.T, stream string) pipeline.Destination {
		o := e.opts(stream)
		o.Columns = []Column{{Name: "raw", Path: ".", Type: "bytea", Format: "raw"}}
		o.RecordIDColumn = "record_id"
		o.CreateTable = true
		if !tables[stream] {
			e.exec("DROP TABLE IF EXISTS " + e.schema + "." + quoteIdentTest(stream))
			e.exec("DROP TABLE IF EXISTS " + e.schema + ".sluice_load_ledger")
			tables[stream] = true
		}
		return e.dest(o, stream)
	}
	destinationtest.Run(t, destinationtest.Harness{
		New: func(t *testing.T, stream string) pipeline.Destination {
			delete(tables, stream)
			return newDest(t, stream)
		},
		Read: func(t *testing.T, stream string) [][]byte {
			var units [][]byte
			rows, err := e.conn.Query(context.Background(), "SELECT raw FROM "+e.schema+"."+quoteIdentTest(stream))
			if err != nil {
				if strings.Contains(err.Error(), "42P01") {
					return nil // never created: nothing stored
				}
				t.Fatal(err)
			}
			defer rows.Close()
			for rows.Next() {
				var b []byte
				if err := rows.Scan(&b); err != nil {
					t.Fatal(err)
				}
				units = append(units, b)
			}
			return units
		},
		Expect: func(b pipeline.Batch) [][]byte {
			units := make([][]byte, len(b.Records))
			for i, r := range b.Records {
				units[i] = append([]byte{}, r.Data...)
			}
			return units
		},
		Partial: &destinationtest.Partial{
			New: func(t *testing.T, stream string) pipeline.Destination {
				delete(tables, stream)
				o := e.opts(stream)
				o.Columns = []Column{{Name: "n", Path: "n", Type: "integer"}, {Name: "raw", Path: ".", Type: "bytea", Format: "raw"}}
				o.CreateTable = true
				e.exec("DROP TABLE IF EXISTS " + e.schema + "." + quoteIdentTest(stream))
				e.exec("CREATE TABLE " + e.schema + "." + quoteIdentTest(stream) + " (n integer CHECK (n >= 0), raw bytea)")
				return e.dest(o, stream)
			},
			Batch: func(stream string) (pipeline.Batch, []int, [][]byte) {
				b := batch(stream, 0, `{"n":1}`, `{"n":-1}`, `{"n":2}`, `not json`, `{"n":3}`)
				return b, []int{1, 3}, [][]byte{[]byte(`{"n":1}`), []byte(`{"n":2}`), []byte(`{"n":3}`)}
			},
		},
	})
}

func quoteIdentTest(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// TestWholeRecordJSONB: the default mapping loads each record into a jsonb
// column with its record ID and arrival time, values exact.
func TestWholeRecordJSONB(t *testing.T) {
	e := newEnv(t)
	o := e.opts("events")
	o.RecordIDColumn = "record_id"
	o.ArrivalTimeColumn = "arrived"
	o.CreateTable = true
	d := e.dest(o, "events")
	recs := []string{
		`{"id":9007199254740993,"n":null,"price":12345678901234567890.123456789}`,
		`{"name":"Zoë 👩‍👩‍👧 e\u0301","nested":{"a":[1,{"b":true}],"c":{}}}`,
		`{"at":"2026-12-02T07:30:00.123456+05:30"}`,
		`[1,2,3]`,
		`"a string"`,
	}
	b := batch("events", 0, recs...)
	if err := deliver(t, d, b); err != nil {
		t.Fatal(err)
	}
	got := e.strings("SELECT record_id, (data = $1::jsonb)::text, arrived FROM "+e.schema+".events ORDER BY record_id", recs[0])
	if len(got) != len(recs) {
		t.Fatalf("%d rows, want %d: %q", len(got), len(recs), got)
	}
	for i, r := range b.Records {
		var same bool
		if err := e.conn.QueryRow(context.Background(),
			"SELECT data = $1::jsonb AND arrived = $2 FROM "+e.schema+".events WHERE record_id = $3", recs[i], r.Arrived, r.ID).Scan(&same); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if !same {
			t.Errorf("record %d (%s) did not load as itself", i, recs[i])
		}
	}
	// The big integer and the numeric keep every digit in jsonb.
	if v := e.strings("SELECT data->>'id', data->>'price' FROM " + e.schema + ".events WHERE data ? 'id'"); !slices.Equal(v, []string{"9007199254740993|12345678901234567890.123456789"}) {
		t.Errorf("numbers = %q", v)
	}
}

// TestRedeliveryIsSkipped: the same batch delivered again is recognised
// by the ledger: rows once, the refused rows reported again.
func TestRedeliveryIsSkipped(t *testing.T) {
	e := newEnv(t)
	o := e.opts("events")
	o.RecordIDColumn = "record_id"
	o.CreateTable = true
	d := e.dest(o, "s")
	b := batch("s", 100, `{"a":1}`, `not json`, `{"a":3}`)
	for i := range 3 {
		err := deliver(t, d, b)
		if got := failedIndices(t, err); !slices.Equal(got, []int{1}) {
			t.Fatalf("delivery %d refused %v, want [1]", i, got)
		}
		if n := e.count("events"); n != 2 {
			t.Fatalf("delivery %d: %d rows, want 2", i, n)
		}
	}
	if got := e.metric(pgload.MetricLedgerSkips, map[string]string{"stream": "s"}); got != 2 {
		t.Errorf("ledger skips = %v, want 2", got)
	}
	// A second destination (a restarted daemon) sees the same ledger.
	d2 := e.dest(o, "s")
	if got := failedIndices(t, deliver(t, d2, b)); !slices.Equal(got, []int{1}) {
		t.Errorf("after a restart: refused %v", got)
	}
	// Another batch identity with the same records loads again.
	b2 := b
	b2.ID = pipeline.BatchID{First: b.ID.End, End: b.ID.End + 100}
	b2.Records = slices.Clone(b.Records)
	for i := range b2.Records {
		b2.Records[i].ID += "-other"
	}
	_ = deliver(t, d, b2)
	if n := e.count("events"); n != 4 {
		t.Errorf("%d rows after a distinct batch, want 4", n)
	}
}

// TestBadRowsIsolated: 1,000 records, 3 the server refuses (a CHECK
// violation, an over-long value, a NUL escape in jsonb): 997 rows load
// exactly once, the 3 come back with SQLSTATE and message, metrics agree.
func TestBadRowsIsolated(t *testing.T) {
	e := newEnv(t)
	e.exec("CREATE TABLE " + e.schema + ".orders (id bigint NOT NULL, code varchar(8), qty integer CHECK (qty >= 0), doc jsonb, record_id text UNIQUE)")
	o := e.opts("orders")
	o.Columns = []Column{{Name: "id", Type: "bigint"}, {Name: "code", Type: "text"}, {Name: "qty", Type: "integer"}, {Name: "doc", Type: "jsonb"}}
	o.RecordIDColumn = "record_id"
	d := e.dest(o, "orders")
	var recs []string
	bad := map[int]string{137: "23514", 500: "22001", 871: "22P05"}
	for i := range 1000 {
		switch bad[i] {
		case "23514":
			recs = append(recs, fmt.Sprintf(`{"id":%d,"code":"ok","qty":-5,"doc":{}}`, i))
		case "22001":
			recs = append(recs, fmt.Sprintf(`{"id":%d,"code":"much-too-long","qty":1,"doc":{}}`, i))
		case "22P05":
			recs = append(recs, fmt.Sprintf(`{"id":%d,"code":"ok","qty":1,"doc":{"x":"\u0000"}}`, i))
		default:
			recs = append(recs, fmt.Sprintf(`{"id":%d,"code":"c%d","qty":%d,"doc":{"i":%d}}`, i, i%100, i, i))
		}
	}
	err := deliver(t, d, batch("orders", 0, recs...))
	var pe *pipeline.PartialError
	if !errors.As(err, &pe) {
		t.Fatalf("Deliver = %v, want a PartialError", err)
	}
	got := map[int]string{}
	for _, f := range pe.Failed {
		var c pipeline.Coder
		if !errors.As(f.Err, &c) || c.ErrorCode() != CodeDataLoadFailed || pipeline.IsRetryable(f.Err) {
			t.Errorf("record %d: %v, want permanent %s", f.Index, f.Err, CodeDataLoadFailed)
		}
		got[f.Index] = f.Err.Error()
	}
	if len(got) != 3 {
		t.Fatalf("refused %v, want %v", got, bad)
	}
	for i, state := range bad {
		if !strings.Contains(got[i], "SQLSTATE "+state) {
			t.Errorf("record %d: %q, want SQLSTATE %s", i, got[i], state)
		}
	}
	ids := e.strings("SELECT id::text AS s FROM " + e.schema + ".orders ORDER BY id")
	if len(ids) != 997 {
		t.Fatalf("%d rows, want 997", len(ids))
	}
	want := 0
	for _, id := range ids {
		for bad[want] != "" {
			want++
		}
		if id != fmt.Sprint(want) {
			t.Fatalf("row id %s, want %d (each good record exactly once)", id, want)
		}
		want++
	}
	for class, n := range map[string]float64{"22": 2, "23": 1} {
		if got := e.metric(pgload.MetricRejectedRows, map[string]string{"stream": "orders", "sqlstate_class": class}); got != n {
			t.Errorf("rejected rows of class %s = %v, want %v", class, got, n)
		}
	}
	if n := e.metric(pgload.MetricIsolationLoads, map[string]string{"stream": "orders"}); n < 3 || n > 40 {
		t.Errorf("isolation loads = %v, want a few per bad row", n)
	}
}

// TestUpsertLastRecordWins: duplicates of a key in one batch resolve to
// the last record; later batches update; values exact.
func TestUpsertLastRecordWins(t *testing.T) {
	e := newEnv(t)
	o := e.opts("users")
	o.Mode = ModeUpsert
	o.Keys = []string{"id"}
	o.Columns = []Column{{Name: "id", Type: "bigint", Required: true}, {Name: "name", Type: "text"},
		{Name: "balance", Type: "numeric"}, {Name: "seen", Type: "timestamptz"}, {Name: "tags", Type: "text[]"}}
	o.CreateTable = true
	d := e.dest(o, "users")
	b1 := batch("users", 0,
		`{"id":1,"name":"first","balance":"1.50","seen":"2026-12-02T01:00:00Z","tags":["a"]}`,
		`{"id":2,"name":"Zoë","balance":99999999999999999999.99,"seen":1764640800,"tags":["x",null]}`,
		`{"id":1,"name":"second","balance":2.25,"seen":"2026-12-02T02:00:00+05:30","tags":[]}`,
		`{"id":9007199254740993,"name":null,"balance":null,"seen":null,"tags":null}`,
		`{"id":1,"name":"third","balance":-0.001,"seen":1764640800123,"tags":["z"]}`,
	)
	if err := deliver(t, d, b1); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"1|third|-0.001|2025-12-02 02:00:00.123+00|{z}",
		"2|Zoë|99999999999999999999.99|2025-12-02 02:00:00+00|{x,NULL}",
		"9007199254740993|NULL|NULL|NULL|NULL",
	}
	q := "SELECT id::text, name, balance::text, (seen AT TIME ZONE 'UTC')::text || '+00', tags::text FROM " + e.schema + ".users ORDER BY id"
	if got := e.strings(q); !slices.Equal(got, want) {
		t.Errorf("after batch 1:\n got %q\nwant %q", got, want)
	}
	if err := deliver(t, d, batch("users", b1.ID.End, `{"id":2,"name":"updated","balance":0,"seen":null,"tags":["y"]}`)); err != nil {
		t.Fatal(err)
	}
	want[1] = "2|updated|0|NULL|{y}"
	if got := e.strings(q); !slices.Equal(got, want) {
		t.Errorf("after batch 2:\n got %q\nwant %q", got, want)
	}
	// The redelivered first batch is skipped: it does not undo batch 2.
	if err := deliver(t, d, b1); err != nil {
		t.Fatal(err)
	}
	if got := e.strings(q); !slices.Equal(got, want) {
		t.Errorf("after redelivering batch 1:\n got %q\nwant %q", got, want)
	}
}

// TestUpsertBadRowsIsolated: a row refused by the target's constraint in
// the INSERT … SELECT (no COPY line to go by) is found by bisection.
func TestUpsertBadRowsIsolated(t *testing.T) {
	e := newEnv(t)
	e.exec("CREATE TABLE " + e.schema + ".stock (sku text PRIMARY KEY, qty integer CHECK (qty >= 0))")
	o := e.opts("stock")
	o.Mode = ModeUpsert
	o.Keys = []string{"sku"}
	o.Columns = []Column{{Name: "sku", Type: "text"}, {Name: "qty", Type: "integer"}}
	d := e.dest(o, "stock")
	var recs []string
	for i := range 64 {
		qty := i
		if i == 17 || i == 40 {
			qty = -1
		}
		recs = append(recs, fmt.Sprintf(`{"sku":"s%d","qty":%d}`, i%50, qty))
	}
	got := failedIndices(t, deliver(t, d, batch("stock", 0, recs...)))
	if !slices.Equal(got, []int{17, 40}) {
		t.Fatalf("refused %v, want [17 40]", got)
	}
	// s0..s13 appear twice (i and i+50): the later record wins.
	rows := e.strings("SELECT sku, qty::text FROM " + e.schema + ".stock WHERE sku IN ('s0','s13','s14','s17','s40') ORDER BY sku")
	if want := []string{"s0|50", "s13|63", "s14|14"}; !slices.Equal(rows, want) {
		t.Errorf("rows %q, want %q (s17 and s40 refused)", rows, want)
	}
}

// TestTableErrorsAreRetriedAndReported: a missing table is a retryable
// Postgres.TableNotFound, never isolated row by row, and Ready says so
// until a load succeeds.
func TestTableErrorsAreRetriedAndReported(t *testing.T) {
	e := newEnv(t)
	o := e.opts("later")
	o.Columns = []Column{{Name: "a", Type: "integer"}}
	d := e.dest(o, "later")
	if err := d.Ready(context.Background()); err != nil {
		t.Fatalf("Ready before any load: %v", err)
	}
	b := batch("later", 0, `{"a":1}`, `{"a":2}`)
	err := deliver(t, d, b)
	var c pipeline.Coder
	if !pipeline.IsRetryable(err) || !errors.As(err, &c) || c.ErrorCode() != "Postgres.TableNotFound" {
		t.Fatalf("Deliver = %v, want retryable Postgres.TableNotFound", err)
	}
	if err := d.Ready(context.Background()); err == nil || !strings.Contains(err.Error(), "42P01") {
		t.Errorf("Ready = %v, want the missing table (42P01)", err)
	}
	if n := e.metric(pgload.MetricIsolationLoads, nil); n != 0 {
		t.Errorf("%v isolation loads for a table error", n)
	}
	e.exec("CREATE TABLE " + e.schema + ".later (a integer)")
	if err := deliver(t, d, b); err != nil {
		t.Fatalf("after creating the table: %v", err)
	}
	if err := d.Ready(context.Background()); err != nil {
		t.Errorf("Ready after a successful load: %v", err)
	}
	// A missing column is a ColumnMismatch, also table-level.
	o.Columns = append(o.Columns, Column{Name: "b", Type: "text"})
	d2 := e.dest(o, "later")
	err = deliver(t, d2, batch("later", b.ID.End, `{"a":3,"b":"x"}`))
	if !pipeline.IsRetryable(err) || !errors.As(err, &c) || c.ErrorCode() != "Postgres.ColumnMismatch" {
		t.Errorf("missing column: %v, want retryable Postgres.ColumnMismatch", err)
	}
}

// TestUnreachableIsRetryable: no server: a retryable ConnectionFailed,
// and Ready fails.
func TestUnreachableIsRetryable(t *testing.T) {
	e := newEnv(t)
	o := e.opts("t")
	o.DSN = "postgres://root@127.0.0.1:1/test?sslmode=disable&connect_timeout=2"
	d := e.dest(o, "t")
	err := deliver(t, d, batch("t", 0, `{}`))
	var c pipeline.Coder
	if !pipeline.IsRetryable(err) || !errors.As(err, &c) || c.ErrorCode() != "Postgres.ConnectionFailed" {
		t.Errorf("Deliver = %v, want retryable Postgres.ConnectionFailed", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.Ready(ctx); err == nil {
		t.Error("Ready with no server = nil")
	}
}

// TestSecretsNeverShown: the password in the DSN appears in no error, log
// or printed configuration.
func TestSecretsNeverShown(t *testing.T) {
	const pw = "pa55-w0rd-SECRET"
	o := DefaultOptions()
	o.DSN = "postgres://root:" + pw + "@127.0.0.1:1/test?sslmode=disable&connect_timeout=1"
	o.Table = "t"
	cfg, err := Compile(o)
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(context.Background(), cfg, "s", pipeline.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close(context.Background())
	err = deliver(t, d, batch("s", 0, `{}`))
	rerr := d.Ready(context.Background())
	bad := o
	bad.DSN = "postgres://root:" + pw + "@127.0.0.1:notaport/test"
	_, cerr := Compile(bad)
	for _, s := range []string{fmt.Sprint(err), fmt.Sprint(rerr), fmt.Sprint(cerr), fmt.Sprintf("%v %+v %#v", cfg, d, o), fmt.Sprint(cfg.LogValue())} {
		if strings.Contains(s, pw) {
			t.Errorf("password shown: %s", s)
		}
	}
	if cerr == nil {
		t.Error("a bad port compiled")
	}
}

func TestCompileErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Options)
		keys []string
	}{
		{"no dsn, no table", func(o *Options) { o.DSN = ""; o.Table = "" }, []string{"dsn", "table"}},
		{"bad table", func(o *Options) { o.Table = "a.b.c" }, []string{"table"}},
		{"bad mode", func(o *Options) { o.Mode = "merge" }, []string{"mode"}},
		{"upsert without keys", func(o *Options) { o.Mode = ModeUpsert }, []string{"keys"}},
		{"key not a column", func(o *Options) { o.Mode = ModeUpsert; o.Keys = []string{"nope"} }, []string{"keys[0]"}},
		{"keys in insert mode", func(o *Options) { o.Keys = []string{"data"} }, []string{"keys"}},
		{"record id is a mapped column", func(o *Options) { o.RecordIDColumn = "data" }, []string{"record_id_column"}},
		{"ledger is the table", func(o *Options) { o.LedgerTable = "public.t" }, []string{"ledger_table"}},
		{"short retention", func(o *Options) { o.LedgerRetention = time.Minute }, []string{"ledger_retention"}},
		{"bad tls", func(o *Options) { o.TLS.Mode = "always" }, []string{"tls.mode"}},
		{"dsn and file", func(o *Options) { o.DSNFile = "/x" }, []string{"dsn"}},
		{"bad column type", func(o *Options) { o.Columns = []Column{{Name: "a", Type: "money"}} }, []string{"columns[0].type"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := DefaultOptions()
			o.DSN = "postgres://root@127.0.0.1/test"
			o.Table = "t"
			tc.mod(&o)
			_, err := Compile(o)
			if err == nil {
				t.Fatal("compiled")
			}
			var got []string
			for _, e := range flatten(err) {
				var oe *pipeline.OptionError
				if errors.As(e, &oe) {
					got = append(got, oe.Key)
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.keys) {
				t.Errorf("error keys %q, want %q (%v)", got, tc.keys, err)
			}
		})
	}
	o := DefaultOptions()
	o.DSN = "postgres://root@127.0.0.1/test"
	o.Table = "t"
	o.Mode = ModeUpsert
	o.Keys = []string{"data"}
	cfg, err := Compile(o)
	if err != nil {
		t.Fatal(err)
	}
	if n, key, _ := cfg.MaxInFlight(); n != 1 || key != "mode" {
		t.Errorf("upsert MaxInFlight = %d at %q, want 1 at mode", n, key)
	}
}

func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

// TestRawFormat: format raw loads the record's bytes as they are, JSON or
// not; text refuses what text cannot hold; raw needs path ".".
func TestRawFormat(t *testing.T) {
	m, err := CompileMapping([]Column{{Name: "line", Path: ".", Type: "text", Format: "raw"}, {Name: "b", Path: ".", Type: "bytea", Format: "raw"}})
	if err != nil {
		t.Fatal(err)
	}
	row, err := m.Row([]byte(" not json, ünïcode "), nil)
	if err != nil || len(row) != 2 || row[0] != " not json, ünïcode " || string(row[1].([]byte)) != " not json, ünïcode " {
		t.Fatalf("Row = %q, %v", row, err)
	}
	for _, bad := range [][]byte{{'a', 0, 'b'}, {0xff, 0xfe}} {
		if _, err := m.Row(bad, nil); err == nil || !strings.Contains(err.Error(), "bytea") {
			t.Errorf("Row(%q) = %v, want a refusal pointing to bytea", bad, err)
		}
	}
	mb, err := CompileMapping([]Column{{Name: "b", Path: ".", Type: "bytea", Format: "raw"}})
	if err != nil {
		t.Fatal(err)
	}
	if row, err := mb.Row([]byte{0, 0xff}, nil); err != nil || string(row[0].([]byte)) != "\x00\xff" {
		t.Errorf("bytea raw Row = %q, %v", row, err)
	}
	for _, cols := range [][]Column{
		{{Name: "a", Path: "a", Type: "text", Format: "raw"}},
		{{Name: "a", Path: ".", Type: "text[]", Format: "raw"}},
		{{Name: "a", Path: ".", Type: "jsonb", Format: "raw"}},
	} {
		if _, err := CompileMapping(cols); err == nil || !strings.Contains(err.Error(), "columns[0].format") {
			t.Errorf("CompileMapping(%+v) = %v, want an error at columns[0].format", cols, err)
		}
	}
	// With a JSON column beside it, the record must be JSON.
	mixed, err := CompileMapping([]Column{{Name: "n", Type: "integer"}, {Name: "raw", Path: ".", Type: "text", Format: "raw"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mixed.Row([]byte("not json"), nil); err == nil {
		t.Error("a mixed mapping took a record that is not JSON")
	}
	if row, err := mixed.Row([]byte(` {"n": 7} `), nil); err != nil || row[0] != int32(7) || row[1] != ` {"n": 7} ` {
		t.Errorf("mixed Row = %#v, %v", row, err)
	}
}

// TestInsertValuesExact: a mapped insert loads every value exactly: nulls,
// big integers, numerics with every digit, timestamps with zones and as
// epochs, unicode, nested JSON, arrays with nulls, bytea, booleans.
func TestInsertValuesExact(t *testing.T) {
	e := newEnv(t)
	o := e.opts("facts")
	o.Columns = []Column{
		{Name: "id", Type: "bigint", Required: true}, {Name: "name", Path: "who.name", Type: "text"},
		{Name: "amount", Type: "numeric"}, {Name: "at", Type: "timestamptz"}, {Name: "ok", Type: "boolean"},
		{Name: "doc", Path: "nested", Type: "jsonb"}, {Name: "nums", Type: "bigint[]"}, {Name: "blob", Type: "bytea"},
	}
	o.RecordIDColumn = "record_id"
	o.CreateTable = true
	d := e.dest(o, "facts")
	b := batch("facts", 0,
		`{"id":9223372036854775807,"who":{"name":"Zoë 👩‍👩‍👧 e\u0301"},"amount":12345678901234567890.123456789,"at":"2026-12-02T07:30:00.123456+05:30","ok":true,"nested":{"a":[1,{"b":null}],"c":"ü"},"nums":[1,null,-9223372036854775808],"blob":"AAH/"}`,
		`{"id":-1,"who":null,"amount":"-0.000001","at":1764660600,"ok":false,"nested":[],"nums":[],"blob":""}`,
		`{"id":0,"amount":null,"at":1764660600123,"nested":"just a string"}`,
	)
	if err := deliver(t, d, b); err != nil {
		t.Fatal(err)
	}
	got := e.strings(`SELECT id::text AS i, coalesce(name, 'NULL'), coalesce(amount::text, 'NULL'),
		coalesce(to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'), 'NULL'), coalesce(ok::text, 'NULL'),
		coalesce(doc::text, 'NULL'), coalesce(nums::text, 'NULL'), coalesce(encode(blob, 'hex'), 'NULL'), record_id
		FROM ` + e.schema + `.facts ORDER BY id`)
	want := []string{
		"-1|NULL|-0.000001|2025-12-02 07:30:00.000000|false|[]|{}||" + b.Records[1].ID,
		"0|NULL|NULL|2025-12-02 07:30:00.123000|NULL|\"just a string\"|NULL|NULL|" + b.Records[2].ID,
		"9223372036854775807|Zoë 👩‍👩‍👧 e\u0301|12345678901234567890.123456789|2026-12-02 02:00:00.123456|true|" +
			`{"a": [1, {"b": null}], "c": "ü"}|{1,NULL,-9223372036854775808}|0001ff|` + b.Records[0].ID,
	}
	if !slices.Equal(got, want) {
		t.Errorf("rows\n got %q\nwant %q", got, want)
	}
}
