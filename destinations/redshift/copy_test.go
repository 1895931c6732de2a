package redshift

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/pipeline"
)

func mustCompile(t *testing.T, o Options) *Config {
	t.Helper()
	c, err := Compile(o)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return c
}

const testManifest = "s3://staging-bucket/manifests/2026/12/02/07/stream-1-2026-12-02-07-30-00-x"

func TestCopySQL(t *testing.T) {
	tests := []struct {
		name      string
		edit      func(*Options)
		want      string
		redacted  string // "" when the same as want
		forbidden []string
	}{
		{
			name: "iam role, json, copy options",
			edit: func(o *Options) { o.Columns = []string{"a", "b"}; o.CopyOptions = " TIMEFORMAT 'auto' " },
			want: `COPY "public"."events" ("a","b") FROM '` + testManifest + `' IAM_ROLE 'arn:aws:iam::123456789012:role/r' MANIFEST FORMAT AS JSON 'auto' GZIP TIMEFORMAT 'auto'`,
		},
		{
			name: "no columns, no options",
			edit: func(o *Options) { o.Table = "analytics.Events" },
			want: `COPY "analytics"."Events" FROM '` + testManifest + `' IAM_ROLE 'arn:aws:iam::123456789012:role/r' MANIFEST FORMAT AS JSON 'auto' GZIP`,
		},
		{
			name: "access keys",
			edit: func(o *Options) {
				o.IAMRole, o.AccessKeyID, o.SecretAccessKey = "", "AKIAEXAMPLE", "wJalr/K7MDENG+bPxRfiCY"
			},
			want:      `COPY "public"."events" FROM '` + testManifest + `' ACCESS_KEY_ID 'AKIAEXAMPLE' SECRET_ACCESS_KEY 'wJalr/K7MDENG+bPxRfiCY' MANIFEST FORMAT AS JSON 'auto' GZIP`,
			redacted:  `COPY "public"."events" FROM '` + testManifest + `' ACCESS_KEY_ID '[redacted]' SECRET_ACCESS_KEY '[redacted]' MANIFEST FORMAT AS JSON 'auto' GZIP`,
			forbidden: []string{"AKIAEXAMPLE", "wJalr"},
		},
		{
			name: "access keys and session token",
			edit: func(o *Options) {
				o.IAMRole, o.AccessKeyID, o.SecretAccessKey, o.SessionToken = "", "ASIAEXAMPLE", "sekrit", "FQoGZXIvYXdzE//token=="
			},
			want:      `COPY "public"."events" FROM '` + testManifest + `' ACCESS_KEY_ID 'ASIAEXAMPLE' SECRET_ACCESS_KEY 'sekrit' SESSION_TOKEN 'FQoGZXIvYXdzE//token==' MANIFEST FORMAT AS JSON 'auto' GZIP`,
			redacted:  `COPY "public"."events" FROM '` + testManifest + `' ACCESS_KEY_ID '[redacted]' SECRET_ACCESS_KEY '[redacted]' SESSION_TOKEN '[redacted]' MANIFEST FORMAT AS JSON 'auto' GZIP`,
			forbidden: []string{"ASIAEXAMPLE", "sekrit", "FQoGZX"},
		},
		{
			name: "csv",
			edit: func(o *Options) {
				o.Format, o.Columns, o.CopyOptions = "csv", []string{"id", `we"ird`}, "TRUNCATECOLUMNS NULL AS 'it''s'"
			},
			want: `COPY "public"."events" ("id","we""ird") FROM '` + testManifest + `' IAM_ROLE 'arn:aws:iam::123456789012:role/r' MANIFEST CSV GZIP EMPTYASNULL TRUNCATECOLUMNS NULL AS 'it''s'`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := validOptions()
			tt.edit(&o)
			c := mustCompile(t, o)
			if got := c.CopySQL(testManifest); got != tt.want {
				t.Errorf("CopySQL\n got %s\nwant %s", got, tt.want)
			}
			red := tt.redacted
			if red == "" {
				red = tt.want
			}
			got := c.RedactedCopySQL(testManifest)
			if got != red {
				t.Errorf("RedactedCopySQL\n got %s\nwant %s", got, red)
			}
			for _, s := range tt.forbidden {
				if strings.Contains(got, s) {
					t.Errorf("redacted statement shows %q", s)
				}
			}
		})
	}
}

func TestCopySQLQuotesTheURL(t *testing.T) {
	c := mustCompile(t, validOptions())
	got := c.CopySQL("s3://b/it's")
	if !strings.Contains(got, ` FROM 's3://b/it''s' `) {
		t.Errorf("quote not doubled: %s", got)
	}
}

// TestSecretsNeverShown prints the options, the Config and a failed
// load's error and logs in every way, and looks for the secrets.
func TestSecretsNeverShown(t *testing.T) {
	o := validOptions()
	o.IAMRole, o.AccessKeyID, o.SecretAccessKey, o.SessionToken = "", "AKIDSECRETID", "SECRETKEYVALUE", "SESSIONTOKENVALUE"
	o.Staging.AccessKeyID, o.Staging.SecretAccessKey = "STAGINGKEYID", "STAGINGSECRET"
	secrets := []string{"AKIDSECRETID", "SECRETKEYVALUE", "SESSIONTOKENVALUE", "STAGINGSECRET", "s3cr3t-pw"}
	c := mustCompile(t, o)

	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	log.Info("config", "options", o, "config", c, "value", *c)
	var shown strings.Builder
	for _, v := range []any{o, &o, c, *c} {
		fmt.Fprintf(&shown, "%v %+v %#v %s\n", v, v, v, v)
	}
	shown.WriteString(c.RedactedCopySQL(testManifest))
	// A server error that echoes the statement is scrubbed.
	shown.WriteString(c.scrub("syntax error near " + c.CopySQL(testManifest)))
	shown.WriteString(logs.String())

	// A failed load's error, through Deliver's classification.
	d := &Destination{cfg: *c, stream: "s", log: log}
	d.metrics = testMetrics(t).For("s", Kind)
	err := d.failed(t.Context(), pipeline.Batch{ID: pipeline.BatchID{First: 1, End: 2}}, staged{},
		&copyError{err: fmt.Errorf("broken pipe sending %s", c.CopySQL(testManifest)), sql: c.RedactedCopySQL(testManifest)})
	shown.WriteString(err.Error())
	shown.WriteString(logs.String())

	for _, s := range secrets {
		if strings.Contains(shown.String(), s) {
			t.Errorf("%q shown:\n%s", s, shown.String())
		}
	}
	if !strings.Contains(shown.String(), "[redacted]") {
		t.Errorf("no [redacted] marker at all:\n%s", shown.String())
	}
}

func TestKeysAndManifest(t *testing.T) {
	o := validOptions()
	o.Staging.Prefix = "fh/"
	c := mustCompile(t, o)
	at := time.Date(2026, 12, 2, 7, 30, 5, 0, time.FixedZone("x", 3600)) // 06:30:05 UTC
	id := pipeline.BatchID{First: 16, End: 96}
	data, manifest, errs := c.Keys("stream", id, at)
	uuid := strings.TrimSuffix(strings.TrimPrefix(data, "fh/2026/12/02/06/stream-1-2026-12-02-06-30-05-"), ".gz")
	if len(uuid) != 36 || !strings.HasSuffix(data, ".gz") {
		t.Fatalf("data key %q: want fh/2026/12/02/06/stream-1-2026-12-02-06-30-05-<uuid>.gz", data)
	}
	if want := "fh/manifests/2026/12/02/06/stream-1-2026-12-02-06-30-05-" + uuid; manifest != want {
		t.Errorf("manifest key %q, want %q", manifest, want)
	}
	if want := "fh/errors/2026/12/02/06/stream-1-2026-12-02-06-30-05-" + uuid; errs != want {
		t.Errorf("errors key %q, want %q", errs, want)
	}
	// Deterministic per batch identity; other rounds and parts differ.
	if again, _, _ := c.Keys("stream", id, at); again != data {
		t.Errorf("keys not deterministic: %q, %q", data, again)
	}
	for _, other := range []pipeline.BatchID{{First: 16, End: 96, Round: 1}, {First: 16, End: 96, Part: 1}, {First: 96, End: 128}} {
		if k, _, _ := c.Keys("stream", other, at); k == data {
			t.Errorf("batch %v has the key of %v", other, id)
		}
	}
	want := `{"entries":[{"url":"s3://staging-bucket/` + data + `","mandatory":true}]}`
	if got := string(c.ManifestJSON(data)); got != want {
		t.Errorf("manifest\n got %s\nwant %s", got, want)
	}
}

func TestCheckRecord(t *testing.T) {
	for _, ok := range []string{`{}`, ` {"a":1}`, "{\"a\":\n [1,2]}\n", `{"é":"ü"}`} {
		if err := checkRecord([]byte(ok)); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []struct{ data, msg string }{
		{``, "empty"}, {`  `, "empty"}, {`[1]`, "not a JSON object"}, {`"s"`, "not a JSON object"},
		{`{"a":}`, "not valid JSON"}, {`{"a":1}{"b":2}`, "not valid JSON"}, {"{\"a\":\"\xff\"}", "UTF-8"},
		{`not json`, "not a JSON object"},
	} {
		err := checkRecord([]byte(bad.data))
		if err == nil || !strings.Contains(err.Error(), bad.msg) {
			t.Errorf("%q: error %v, want one saying %q", bad.data, err, bad.msg)
		}
	}
}

func TestAppendRecordJSON(t *testing.T) {
	c := mustCompile(t, validOptions())
	got, err := c.appendRecord([]byte("prev\n"), []byte("{ \"a\" : 1,\n \"b\": \"x y\\n\" , \"c\":{ \"d\": [1, 2] } }"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "prev\n{\"a\":1,\"b\":\"x y\\n\",\"c\":{\"d\":[1,2]}}\n"; string(got) != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestAppendRecordCSV(t *testing.T) {
	o := validOptions()
	o.Format, o.Columns = "csv", []string{"s", "n", "b", "null", "missing", "empty", "nested", "quote"}
	c := mustCompile(t, o)
	rec := `{"s":"a,b\nc","n":-12.5e3,"b":true,"null":null,"empty":"","nested":{"k":[1, "x"]},"quote":"say \"hi\"","other":1}`
	got, err := c.appendRecord(nil, []byte(rec))
	if err != nil {
		t.Fatal(err)
	}
	want := "\"a,b\nc\",-12.5e3,true,,,\"\",\"{\"\"k\"\":[1,\"\"x\"\"]}\",\"say \"\"hi\"\"\"\n"
	if string(got) != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	got, err = c.appendRecord(nil, []byte(`{"b":false,"n":0}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := ",0,false,,,,,\n"; string(got) != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
