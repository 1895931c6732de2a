// Package testpeers starts the real third-party programs the test suite
// runs against: s3rver (an independent S3 server), kinesalite (an
// independent Kinesis Data Streams server) and DuckDB (an independent
// Parquet reader), installed from npm into this folder by
// deploy/install-test-deps.sh (`make tools`), and VictoriaLogs. A missing peer fails the
// test loudly; it never skips.
package testpeers

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// Dir is this folder (where node_modules lives).
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(file)
}

func need(t testing.TB, path string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("test peer missing: %s (run `make tools` or deploy/install-test-deps.sh): %v", path, err)
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("node is required for the test peers (run deploy/install-test-deps.sh): %v", err)
	}
}

// S3rver credentials: s3rver accepts exactly these.
const (
	S3rverAccessKey = "S3RVER"
	S3rverSecretKey = "S3RVER"
)

// StartS3rver runs s3rver on a free loopback port, storing into a fresh
// directory, with the given buckets created. It is stopped at the end of
// the test. It returns the endpoint URL and the storage directory.
func StartS3rver(t testing.TB, buckets ...string) (endpoint, dir string) {
	t.Helper()
	s := NewS3rver(t, buckets...)
	return s.Endpoint, s.Dir
}

// S3rver is a running s3rver that a test can stop and start again on the
// same port and storage (an outage of the S3 store).
type S3rver struct {
	Endpoint string
	Dir      string
	restartable
}

// NewS3rver is StartS3rver returning a handle.
func NewS3rver(t testing.TB, buckets ...string) *S3rver {
	t.Helper()
	bin := filepath.Join(Dir(), "node_modules", "s3rver", "bin", "s3rver.js")
	need(t, bin)
	dir := t.TempDir()
	addr := freeAddr(t)
	_, port := splitPort(addr)
	// s3rver encrypts list continuation tokens with a cipher OpenSSL 3
	// (Node 17+) only offers through its legacy provider: without it,
	// listing more than one page of keys fails with HTTP 500.
	args := []string{"node", "--openssl-legacy-provider", bin, "-d", dir, "-a", "127.0.0.1", "-p", port, "--silent"}
	for _, b := range buckets {
		args = append(args, "--configure-bucket", b)
	}
	s := &S3rver{Endpoint: "http://" + addr, Dir: dir}
	s.p = process{name: "s3rver", argv: args, probe: httpProbe(s.Endpoint+"/", false), t: t}
	t.Cleanup(s.Stop)
	s.Start()
	return s
}

// Result is a DuckDB query result: column names, DuckDB type names and the
// rows as JSON values.
type Result struct {
	Names []string `json:"names"`
	Types []string `json:"types"`
	Rows  [][]any  `json:"rows"`
}

// DuckDB runs one SQL query (typically over read_parquet('file')) in DuckDB.
func DuckDB(t testing.TB, sql string) Result {
	t.Helper()
	script := filepath.Join(Dir(), "duckdb-query.mjs")
	need(t, filepath.Join(Dir(), "node_modules", "@duckdb", "node-api"))
	cmd := exec.Command("node", script, sql)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("duckdb %q: %v\n%s", sql, err, stderr.String())
	}
	var r Result
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.UseNumber()
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("duckdb output: %v\n%s", err, out)
	}
	return r
}

// Quote quotes a string for SQL.
func Quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
