package secret

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestNeverShown(t *testing.T) {
	const value = "hunter2-very-secret"
	s := Secret(value)
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("x", "s", s)
	j, err := json.Marshal(struct{ S Secret }{s})
	if err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{
		fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s %q %x %X %d", s, s, s, s, s, s, s, s),
		s.String(), s.GoString(), logged.String(), string(j),
	} {
		if strings.Contains(out, value) || strings.Contains(out, fmt.Sprintf("%x", value)) {
			t.Errorf("secret shown: %s", out)
		}
		if !strings.Contains(out, redacted) {
			t.Errorf("no %q in %s", redacted, out)
		}
	}
	if Secret("").String() != "" {
		t.Error("an empty secret should print empty")
	}
}

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "pw")
	if err := os.WriteFile(p, []byte("  s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := ReadFile("password_file", p)
	if err != nil || string(s) != "s3cret" {
		t.Fatalf("ReadFile = %q, %v", string(s), err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFile("password_file", empty); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("empty file: %v", err)
	}
	if _, err := ReadFile("password_file", filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "password_file") {
		t.Errorf("missing file: %v", err)
	}
}
