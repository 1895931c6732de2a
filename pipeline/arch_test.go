package pipeline_test

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/sluice-dev/sluice"

// allowed lists, per package pattern, the project packages it may import
// (non-test code). Imports flow down, never sideways (docs/architecture.md):
// only the assembler knows every implementation, and the vocabulary package
// knows none. Destinations share the object layer (destinations/object) and
// the encoders (destinations/format), never each other.
var allowed = []struct {
	pkg     string // package path relative to the module; "x/..." matches x and below
	imports []string
}{
	// The vocabulary carries a stream's keyring to its components
	// (Deps.Keys), so it knows the encryption package, a leaf.
	{"pipeline", []string{"pipeline/seal"}},
	// Encryption at rest, shared by the buffers and the local stores.
	{"pipeline/seal", nil},
	{"config", nil},
	{"config/configtest", nil},
	{"buffer", []string{"pipeline"}},
	{"buffer/...", []string{"pipeline", "pipeline/seal", "buffer", "buffer/internal/...", "buffer/disk/vfs"}},
	// A source's own subpackages may use it (the Kinesis leases use its
	// shard lineage); sources never import each other.
	{"ingest/kinesis/...", []string{"pipeline", "ingest", "ingest/kinesis"}},
	{"ingest/sigv4", []string{}},
	{"ingest/...", []string{"pipeline", "ingest", "ingest/sigv4"}},
	{"transform/...", []string{"pipeline", "transform"}},
	{"destinations/...", []string{"pipeline", "pipeline/seal", "destinations", "destinations/format/...", "destinations/object/...", "destinations/internal/..."}},
	{"pipeline/runner", []string{"pipeline", "buffer"}},
	{"pipeline/status", nil},
	{"pipeline/assemble", []string{"pipeline/...", "config", "buffer/...", "ingest/...", "transform/...", "destinations/...", "buffer"}},
	{"cmd/...", []string{"config", "pipeline", "pipeline/assemble", "destinations/format/parquet", "transform/wasm"}},
	{"deploy/...", []string{"deploy/testpeers/receiver", "deploy/testpeers/pgproxy", "deploy/testpeers/redshift"}},
	{"examples/...", []string{"transform/wasm/guest"}},
}

func match(pattern, p string) bool {
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		return p == base || strings.HasPrefix(p, base+"/")
	}
	return p == pattern
}

func rulesFor(p string) ([]string, bool) {
	// The most specific rule wins: exact patterns are listed before "..." ones
	// where they differ (buffer vs buffer/...).
	for _, r := range allowed {
		if !strings.HasSuffix(r.pkg, "/...") && r.pkg == p {
			return r.imports, true
		}
	}
	for _, r := range allowed {
		if match(r.pkg, p) {
			return r.imports, true
		}
	}
	return nil, false
}

// TestImportDirection fails on a forbidden import edge between the
// project's packages, and on a package that no rule covers.
func TestImportDirection(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(strings.TrimPrefix(fields[0], module), "/")
		if pkg == "" {
			continue
		}
		rules, ok := rulesFor(pkg)
		if !ok {
			t.Errorf("package %s is not covered by the import rules in arch_test.go", pkg)
			continue
		}
		for _, imp := range fields[1:] {
			if pkg == "pipeline" && !strings.Contains(imp, ".") {
				continue // standard library
			}
			if pkg == "pipeline" && !strings.HasPrefix(imp, "github.com/prometheus/client_golang") && !strings.HasPrefix(imp, module+"/") {
				t.Errorf("pipeline imports %s: only the standard library, client_golang and the packages its rule lists are allowed", imp)
				continue
			}
			rel, ok := strings.CutPrefix(imp, module+"/")
			if !ok {
				continue
			}
			permitted := false
			for _, a := range rules {
				if match(a, rel) {
					permitted = true
					break
				}
			}
			if !permitted {
				t.Errorf("forbidden import: %s imports %s (allowed: %s)", pkg, rel, strings.Join(rules, ", "))
			}
		}
	}
}
