package redshift

import (
	"fmt"
	"strings"
	"testing"
)

func oneStatement(t *testing.T, sql string) statement {
	t.Helper()
	stmts, ok := splitStatements(sql)
	if !ok || len(stmts) != 1 {
		t.Fatalf("%q: %d statements, ok %v", sql, len(stmts), ok)
	}
	return stmts[0]
}

func TestSplitStatements(t *testing.T) {
	sql := `SELECT 'a;b', "x;y" -- c;d
	FROM t /* e; /* nested; */ f; */; DO $fn$ BEGIN PERFORM 1; END $fn$; ; copy x from 's3://b/k'`
	stmts, ok := splitStatements(sql)
	if !ok {
		t.Fatal("not tokenized")
	}
	var words []string
	for _, s := range stmts {
		words = append(words, s.firstWord())
	}
	if fmt.Sprint(words) != "[select do copy]" || stmts[2].text != "copy x from 's3://b/k'" {
		t.Fatalf("statements %q", words)
	}
	if _, ok := splitStatements("SELECT 'unterminated"); ok {
		t.Fatal("an unterminated string was tokenized")
	}
	if !oneStatement(t, "select PG_LAST_COPY_COUNT ( ) ;").isLastCopyCount() ||
		oneStatement(t, "select pg_last_copy_count() + 1").isLastCopyCount() {
		t.Fatal("isLastCopyCount")
	}
}

func TestParseCopy(t *testing.T) {
	cmd, err := parseCopy(oneStatement(t, `COPY "My Schema".events ("Id", name) FROM 's3://bucket/path/manifest'
		CREDENTIALS 'aws_access_key_id=AK;aws_secret_access_key=SK;token=TK' manifest
		FORMAT AS CSV QUOTE AS '''' DELIMITER '\t' GZIP IGNOREHEADER AS 2 TIMEFORMAT 'epochsecs'
		DATEFORMAT 'auto' REGION AS 'eu-west-1' MAXERROR 7 TRUNCATECOLUMNS BLANKSASNULL EMPTYASNULL
		ACCEPTINVCHARS AS '^' COMPUPDATE OFF STATUPDATE ON NULL AS 'nil' ENCODING UTF8`))
	if err != nil {
		t.Fatal(err)
	}
	want := copyCmd{schema: "My Schema", table: "events", columns: []string{"Id", "name"}, from: "s3://bucket/path/manifest",
		creds: CredentialsAccessKeys, accessKeyID: "AK", secretAccessKey: "SK", sessionToken: "TK", manifest: true,
		format: formatCSV, delimiter: "\t", quote: '\'', compression: "gzip", region: "eu-west-1", ignoreHeader: 2,
		maxError: 7, timeFormat: "epochsecs", truncateColumns: true, blanksAsNull: true, emptyAsNull: true,
		acceptInvChars: true, invCharRepl: '^', nullAs: "nil"}
	if fmt.Sprintf("%+v", *cmd) != fmt.Sprintf("%+v", want) {
		t.Fatalf("parsed\n%+v\nwant\n%+v", *cmd, want)
	}

	cmd, err = parseCopy(oneStatement(t, `copy t from 's3://b/p' iam_role 'arn:aws:iam::123456789012:role/a,arn:aws:iam::123456789012:role/b' json 'auto ignorecase' bzip2`))
	if err != nil {
		t.Fatal(err)
	}
	if cmd.creds != CredentialsIAMRole || cmd.format != formatJSON || cmd.jsonOpt != "auto ignorecase" || cmd.compression != "bzip2" ||
		cmd.manifest || cmd.delimiter != "|" || cmd.schema != "" || cmd.columns != nil {
		t.Fatalf("parsed %+v", *cmd)
	}
	if cmd, err = parseCopy(oneStatement(t, `COPY t FROM 's3://b/p' IAM_ROLE default DELIMITER '\174\174'`)); err != nil || cmd.delimiter != "||" {
		t.Fatalf("octal delimiter: %+v %v", cmd, err)
	}

	for sql, code := range map[string]string{
		`COPY t FROM 's3://b/p' IAM_ROLE default JSON 's3://b/jsonpaths'`:                "0A000",
		`COPY t FROM 's3://b/p' IAM_ROLE default LZOP`:                                   "0A000",
		`COPY t FROM 's3://b/p' IAM_ROLE default FORMAT AS AVRO 'auto'`:                  "0A000",
		`COPY t FROM 'emr://j-1/x' IAM_ROLE default`:                                     "0A000",
		`COPY db.s.t FROM 's3://b/p' IAM_ROLE default`:                                   "0A000",
		`COPY t TO 's3://b/p'`:                                                           "0A000",
		`COPY t FROM 's3://b/p' IAM_ROLE default JSON 'auto' DELIMITER ','`:              "42601",
		`COPY t FROM 's3://b/p' IAM_ROLE default QUOTE '"'`:                              "42601",
		`COPY t FROM 's3://b/p' IAM_ROLE default CSV ESCAPE`:                             "42601",
		`COPY t FROM 's3://b/p' IAM_ROLE default MAXERROR 100001`:                        "42601",
		`COPY t FROM 's3://b/p' IAM_ROLE default MAXERROR 'x'`:                           "42601",
		`COPY t FROM 's3://b/p' ACCESS_KEY_ID 'a'`:                                       "XX000",
		`COPY t FROM 's3://b/p' CREDENTIALS 'aws_iam_role=x;aws_access_key_id=y'`:        "XX000",
		`COPY t FROM 's3://b/p' CREDENTIALS 'aws_access_key_id=a' SECRET_ACCESS_KEY 'b'`: "42601",
		`COPY t FROM 's3://b/p' IAM_ROLE default TIMEFORMAT 'MM.DD.YYYY'`:                "0A000",
		`COPY t (a, FROM 's3://b/p' IAM_ROLE default`:                                    "42601",
	} {
		_, err := parseCopy(oneStatement(t, sql))
		if err == nil || err.Code != code {
			t.Errorf("%s: %v, want SQLSTATE %s", sql, err, code)
		}
	}
}

func TestRedactCopy(t *testing.T) {
	sql := `COPY t FROM 's3://b/k' ACCESS_KEY_ID 'AKID' SECRET_ACCESS_KEY 'se''cret' SESSION_TOKEN AS 'tok' MANIFEST`
	got := redactCopy(sql)
	if got != `COPY t FROM 's3://b/k' ACCESS_KEY_ID 'AKID' SECRET_ACCESS_KEY '***' SESSION_TOKEN AS '***' MANIFEST` {
		t.Fatalf("redacted %s", got)
	}
	if got := redactCopy(`copy t from 's3://b/k' with credentials 'aws_access_key_id=A;aws_secret_access_key=S'`); strings.Contains(got, "aws_secret") {
		t.Fatalf("redacted %s", got)
	}
	if got := redactCopy(`COPY t SECRET_ACCESS_KEY 'unterminated`); strings.Contains(got, "unterminated") {
		t.Fatalf("redacted %s", got)
	}
}

func TestConvert(t *testing.T) {
	text := column{name: "s", typ: "text", cat: 'S', typmod: -1}
	vc := column{name: "v", typ: "varchar", cat: 'S', typmod: 4 + 5}
	i := column{name: "i", typ: "int4", cat: 'N', typmod: -1}
	num := column{name: "n", typ: "numeric", cat: 'N', typmod: 4 + (10<<16 | 2)}
	ts := column{name: "t", typ: "timestamptz", cat: 'D', typmod: -1}
	js := column{name: "j", typ: "jsonb", cat: 'U', typmod: -1}
	nn := column{name: "nn", typ: "text", cat: 'S', typmod: -1, notNull: true}
	base := copyCmd{invCharRepl: '?'}
	with := func(f func(*copyCmd)) *copyCmd { c := base; f(&c); return &c }
	for _, tc := range []struct {
		f    field
		c    column
		cmd  *copyCmd
		want string // "NULL", "ERR <code>" or the value
	}{
		{field{s: ""}, text, &base, ""},
		{field{s: ""}, text, with(func(c *copyCmd) { c.emptyAsNull = true }), "NULL"},
		{field{s: "", quoted: true}, text, with(func(c *copyCmd) { c.emptyAsNull = true }), ""},
		{field{s: "  "}, text, &base, "  "},
		{field{s: "  "}, text, with(func(c *copyCmd) { c.blanksAsNull = true }), "NULL"},
		{field{s: ""}, i, &base, "NULL"},
		{field{s: " "}, i, &base, "NULL"},
		{field{null: true}, nn, &base, "ERR 1213"},
		{field{s: "abcdef"}, vc, &base, "ERR 1204"},
		{field{s: "ééé"}, vc, with(func(c *copyCmd) { c.truncateColumns = true }), "éé"},
		{field{s: "12.3456"}, num, &base, "12.34"},
		{field{s: "-.999"}, num, &base, "-0.99"},
		{field{s: "12.3456"}, num, with(func(c *copyCmd) { c.roundDec = true }), "12.3456"},
		{field{s: "1700000000"}, ts, with(func(c *copyCmd) { c.timeFormat = "epochsecs" }), "2023-11-14 22:13:20+00"},
		{field{s: "1700000000123"}, ts, with(func(c *copyCmd) { c.timeFormat = "epochmillisecs" }), "2023-11-14 22:13:20.123+00"},
		{field{s: "soon"}, ts, with(func(c *copyCmd) { c.timeFormat = "epochsecs" }), "ERR 1206"},
		{field{s: "x", json: `"x"`}, js, &base, `"x"`},
		{field{s: "a\xffb"}, text, &base, "ERR 1220"},
		{field{s: "a\xffb"}, text, with(func(c *copyCmd) { c.acceptInvChars = true }), "a?b"},
	} {
		v, le := convert(tc.f, tc.c, tc.cmd)
		got := v.s
		switch {
		case le != nil:
			got = fmt.Sprintf("ERR %d", le.Code)
		case v.null:
			got = "NULL"
		}
		if got != tc.want {
			t.Errorf("convert(%+v, %s): %q, want %q", tc.f, tc.c.typ, got, tc.want)
		}
	}
}

// collect decodes data with the given decoder and renders each record.
func collect(t *testing.T, decode func(recordFunc) error) []string {
	t.Helper()
	var out []string
	err := decode(func(line int, fields []field, bad *LoadError) error {
		if bad != nil {
			out = append(out, fmt.Sprintf("%d:ERR %d", line, bad.Code))
			return nil
		}
		var vs []string
		for _, f := range fields {
			if f.null {
				vs = append(vs, "NULL")
			} else {
				vs = append(vs, f.s)
			}
		}
		out = append(out, fmt.Sprintf("%d:%s", line, strings.Join(vs, "|")))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestDecoders(t *testing.T) {
	cols := []column{{name: "a"}, {name: "b"}}
	cmd := &copyCmd{delimiter: "|", nullAs: `\N`, jsonOpt: "auto", invCharRepl: '?'}
	got := collect(t, func(f recordFunc) error {
		return decodeJSON([]byte("{\"a\":1,\"B\":2}\n\n{\"a\":{\"x\": [1]},\n \"b\":\"s\"}\n[1]\n{\"a\":\"\xff\"}\n{\"a\":"), 1, cols, cmd, f)
	})
	if fmt.Sprint(got) != `[1:1|NULL 4:{"x": [1]}|s 5:ERR 1216 6:ERR 1220 7:ERR 1216]` {
		t.Fatalf("json: %q", got)
	}
	ic := *cmd
	ic.jsonOpt = "auto ignorecase"
	if got := collect(t, func(f recordFunc) error { return decodeJSON([]byte(`{"A":1,"B":2}`), 1, cols, &ic, f) }); fmt.Sprint(got) != "[1:1|2]" {
		t.Fatalf("ignorecase: %q", got)
	}

	got = collect(t, func(f recordFunc) error {
		return decodeText([]byte("1|\\N\n\n2|x|y\n3\n"), 10, 2, cmd, f)
	})
	if fmt.Sprint(got) != "[10:1|NULL 11:ERR 1214 12:ERR 1202 13:ERR 1214]" {
		t.Fatalf("text: %q", got)
	}
	fill := *cmd
	fill.fillRecord, fill.ignoreBlankLines, fill.escape = true, true, true
	got = collect(t, func(f recordFunc) error {
		return decodeText([]byte("a\\|b|c\\\nd\n\n3"), 1, 2, &fill, f)
	})
	if fmt.Sprintf("%q", got) != `["1:a|b|c\nd" "4:3|"]` {
		t.Fatalf("text with ESCAPE FILLRECORD IGNOREBLANKLINES: %q", got)
	}

	csv := &copyCmd{delimiter: ";", quote: '\'', nullAs: `\N`}
	got = collect(t, func(f recordFunc) error {
		return decodeCSV([]byte("'a;b' ; 'it''s'\nx;'unterminated\n"), 1, 2, csv, f)
	})
	if fmt.Sprintf("%q", got) != `["1:a;b|it's" "2:ERR 1216"]` {
		t.Fatalf("csv: %q", got)
	}
	got = collect(t, func(f recordFunc) error { return decodeCSV([]byte("'a'x;b\nc;\n"), 1, 2, csv, f) })
	if fmt.Sprintf("%q", got) != `["1:ERR 1216" "2:c|"]` {
		t.Fatalf("csv: %q", got)
	}
	if rest, n := skipLines([]byte("h1\nh2\nbody"), 2); string(rest) != "body" || n != 2 {
		t.Fatalf("skipLines: %q %d", rest, n)
	}
}
