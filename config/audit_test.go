package config

import (
	"testing"
	"time"
)

func TestAuditBlock(t *testing.T) {
	c, err := Parse("a.yaml", []byte(`audit:
  output: file
  path: /var/log/sluice/audit.log
  max_file_bytes: 1MiB
  max_files: 3
  sample: 0.25
  queue_length: 100
  on_full: drop
  block_timeout: 1s
`), testEnv)
	if err != nil {
		t.Fatal(err)
	}
	want := Audit{Output: AuditFile, Path: "/var/log/sluice/audit.log", MaxFileBytes: MiB, MaxFiles: 3, Sample: 0.25,
		QueueLength: 100, OnFull: "drop", BlockTimeout: time.Second}
	if c.Audit != want {
		t.Fatalf("got %+v\nwant %+v", c.Audit, want)
	}
	c, err = Parse("b.yaml", []byte("audit: {output: stderr}\n"), testEnv)
	if err != nil {
		t.Fatal(err)
	}
	want = DefaultAudit
	want.Output = AuditStderr
	if c.Audit != want {
		t.Fatalf("stderr: got %+v", c.Audit)
	}
	c, err = Parse("c.yaml", []byte("listen: 127.0.0.1:1\n"), testEnv)
	if err != nil || c.Audit.Output != "" {
		t.Fatalf("no audit block: %+v %v", c.Audit, err)
	}
}
