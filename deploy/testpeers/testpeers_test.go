package testpeers

import (
	"net/http"
	"testing"
)

func TestPeersStart(t *testing.T) {
	ep, _ := StartS3rver(t, "peer-check")
	resp, err := http.Get(ep + "/peer-check")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusForbidden {
		t.Fatalf("s3rver bucket listing: HTTP %d", resp.StatusCode)
	}
	r := DuckDB(t, "SELECT 40 + 2 AS answer")
	if len(r.Rows) != 1 || r.Names[0] != "answer" || r.Rows[0][0].(interface{ String() string }).String() != "42" {
		t.Fatalf("duckdb result %+v", r)
	}
}
