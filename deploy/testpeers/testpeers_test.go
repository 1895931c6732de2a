package testpeers

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
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

func TestGuestsBuildOnce(t *testing.T) {
	g := NewGuests()
	defer g.Remove()
	src := filepath.Join(t.TempDir(), "empty.wat")
	if err := os.WriteFile(src, []byte("(module (memory (export \"memory\") 1))"), 0o644); err != nil {
		t.Fatal(err)
	}
	first := g.WATFile(t, src)
	info, err := os.Stat(first)
	if err != nil || info.Size() < 8 {
		t.Fatalf("module %s: %v", first, err)
	}
	if err := os.Remove(first); err != nil {
		t.Fatal(err)
	}
	if again := g.WATFile(t, src); again != first {
		t.Fatalf("second build path %s, want %s", again, first)
	}
	if _, err := os.Stat(first); err == nil {
		t.Fatal("the module was built twice")
	}
	if m := WAT(t, "inline", "(module)"); !strings.HasSuffix(m, "inline.wasm") {
		t.Fatalf("WAT: %s", m)
	}
}
