package testpeers

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
)

// VictoriaLogsInstall is the command that installs the VictoriaLogs binary
// StartVictoriaLogs runs (deploy/install-test-deps.sh runs it).
const VictoriaLogsInstall = "cd deploy/testpeers && GOBIN=$PWD/.bin go install github.com/VictoriaMetrics/VictoriaLogs/app/victoria-logs@v1.52.1"

// VictoriaLogs is a running VictoriaLogs v1.52.1 server: a real log database
// that accepts the Elasticsearch _bulk protocol (go-elasticsearch v8 talks to
// it unchanged: it answers with X-Elastic-Product: Elasticsearch and a fake
// version 8.9.0 on GET /). It is not Elasticsearch. What it does with a
// _bulk request, verified against v1.52.1 (app/vlinsert/elasticsearch):
//
//   - Only POST {BulkURL}/_bulk is served; {BulkURL}/{index}/_bulk answers
//     400 "unsupported path". Put _index in the action lines instead.
//   - Action lines are only checked to contain "create" or "index"; their
//     _index and _id are discarded, not stored anywhere. To count "by id" a
//     test must find the id inside the document (a field such as event_id;
//     a document field literally named "_id" is also kept as an ordinary
//     field, though real Elasticsearch rejects that). A "delete" or "update"
//     action fails the whole request with 400.
//   - Nothing is deduplicated: the same _id sent twice, in one request or
//     in two, is stored twice. So Count/CountBy do check "exactly once".
//   - There are no per-item errors: the answer is always errors:false with
//     one {"create":{"status":201}} per document (keyed "create" even for
//     "index" actions), or the whole request fails with HTTP 400 and a plain
//     text body (unparsable JSON document, unparsable time field, unknown
//     action). Documents before the bad one in that request ARE stored: a
//     client that resends the whole request after a 400 duplicates them.
//   - Silent drops answered 201: a line longer than -insert.maxLineSizeBytes
//     (raised here to 2 MiB, VictoriaLogs' hard limit; default 256 KiB),
//     documents with more than 1000 fields, and documents whose _time falls
//     outside the retention (StartVictoriaLogs allows 100 years either way).
//   - A body sent with Content-Type application/x-www-form-urlencoded (curl
//     -d's default) is eaten as a form: 200 with zero items. Send
//     application/x-ndjson or application/json (esapi.Bulk sends the latter).
//   - Content-Encoding gzip (and zstd, snappy, deflate) is accepted.
//
// How a document becomes a log entry:
//
//   - _time is taken from the first of the time fields present in the
//     document, the field then being removed; the time fields are "_time"
//     unless the _time_field query argument or the VL-Time-Field header
//     names others. Values: RFC 3339, YYYY-MM-DD, or Unix seconds /
//     milliseconds / microseconds / nanoseconds. Absent (or "" or 0): the
//     ingestion time.
//   - _msg is the first of the fields named by _msg_field / VL-Msg-Field
//     that is present (renamed to _msg), else a field literally named _msg,
//     else the constant "missing _msg field; see ...".
//   - _stream is built from the fields named by _stream_fields /
//     VL-Stream-Fields ("{}" without them). Other arguments: ignore_fields,
//     extra_fields (VL-Ignore-Fields, VL-Extra-Fields).
//   - Nested objects are flattened to dotted names ({"device":{"os":"ios"}}
//     becomes "device.os"); arrays are stored as their JSON text; numbers
//     and booleans as their JSON text ("1.50" stays "1.50"); null, "" and {}
//     values are not stored at all. Query returns every value as a string.
//
// Acknowledged data only becomes visible to queries after a flush (about a
// second later on its own); Query, Count and CountBy call Flush first.
type VictoriaLogs struct {
	// URL is the server's base address, http://127.0.0.1:PORT.
	URL string
	// Dir is the storage directory (a test temporary directory).
	Dir string

	t testing.TB
	restartable
}

// StartVictoriaLogs runs VictoriaLogs (deploy/testpeers/.bin/victoria-logs,
// installed by deploy/install-test-deps.sh) on a free loopback port with a
// fresh storage directory, waits until /health answers, and stops it when
// the test ends. extraArgs are appended to its command line (for example
// "-insert.maxLineSizeBytes=256KiB" to restore the default limit).
func StartVictoriaLogs(t testing.TB, extraArgs ...string) *VictoriaLogs {
	t.Helper()
	bin := filepath.Join(Dir(), ".bin", "victoria-logs")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("test peer missing: %s (run deploy/install-test-deps.sh, or: %s): %v", bin, VictoriaLogsInstall, err)
	}
	dir := t.TempDir()
	addr := freeAddr(t)
	args := append([]string{
		bin,
		"-storageDataPath", dir,
		"-httpListenAddr", addr,
		"-retentionPeriod=100y",
		"-futureRetention=100y",
		"-insert.maxLineSizeBytes=2MiB",
		"-loggerLevel=WARN",
	}, extraArgs...)
	v := &VictoriaLogs{URL: "http://" + addr, Dir: dir, t: t}
	v.p = process{name: "victoria-logs", argv: args, probe: httpProbe(v.URL+"/health", true), t: t}
	t.Cleanup(v.Stop)
	v.Start()
	return v
}

// BulkURL is the Elasticsearch-compatible base address: the address to give
// go-elasticsearch (Config.Addresses), to which clients append /_bulk.
func (v *VictoriaLogs) BulkURL() string { return v.URL + "/insert/elasticsearch" }

// Output is what the server has logged so far (warnings and errors, such as
// the lines it dropped and the requests it refused).
func (v *VictoriaLogs) Output() string { return v.p.out.String() }

// Flush makes every acknowledged document visible to queries
// (/internal/force_flush).
func (v *VictoriaLogs) Flush(t testing.TB) {
	t.Helper()
	resp, err := http.Get(v.URL + "/internal/force_flush")
	if err != nil {
		t.Fatalf("victoria-logs flush: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("victoria-logs flush: HTTP %d: %s", resp.StatusCode, body)
	}
}

// Query flushes, then runs a LogsQL query (for example `*`,
// `event_id:="e1"`, `* | sort by (event_id)`) over all time and returns the
// result rows. Every row carries _msg, _stream, _stream_id and _time besides
// the document's own fields; values are strings.
func (v *VictoriaLogs) Query(t testing.TB, logsql string) []map[string]any {
	t.Helper()
	v.Flush(t)
	resp, err := http.PostForm(v.URL+"/select/logsql/query", url.Values{"query": {logsql}})
	if err != nil {
		t.Fatalf("victoria-logs query %q: %v", logsql, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("victoria-logs query %q: reading the answer: %v", logsql, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("victoria-logs query %q: HTTP %d: %s", logsql, resp.StatusCode, body)
	}
	var rows []map[string]any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	for {
		var row map[string]any
		if err := dec.Decode(&row); err == io.EOF {
			return rows
		} else if err != nil {
			t.Fatalf("victoria-logs query %q: parsing the answer: %v\n%s", logsql, err, body)
		}
		rows = append(rows, row)
	}
}

// Count is the number of log entries matching a LogsQL filter (`*` for all),
// counted by the server (`| stats count()`).
func (v *VictoriaLogs) Count(t testing.TB, filter string) int {
	t.Helper()
	rows := v.Query(t, filter+" | stats count() as n")
	if len(rows) != 1 {
		t.Fatalf("victoria-logs count %q: want one row, got %v", filter, rows)
	}
	return atoi(t, rows[0]["n"])
}

// CountBy counts the entries matching a LogsQL filter by the value of one
// field (`| stats by (field) count()`): value -> entries. Entries without
// the field count under "". With a document id field it shows ids stored
// more than once, or not at all.
func (v *VictoriaLogs) CountBy(t testing.TB, filter, field string) map[string]int {
	t.Helper()
	rows := v.Query(t, filter+" | stats by ("+strconv.Quote(field)+") count() as n")
	counts := make(map[string]int, len(rows))
	for _, r := range rows {
		key := ""
		if s, ok := r[field].(string); ok {
			key = s
		}
		counts[key] += atoi(t, r["n"])
	}
	return counts
}

func atoi(t testing.TB, v any) int {
	t.Helper()
	s, _ := v.(string)
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("victoria-logs: count %v is not a number: %v", v, err)
	}
	return n
}

// syncBuffer collects a child process's output while tests read it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
