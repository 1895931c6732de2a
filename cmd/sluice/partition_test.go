package main

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/deploy/testpeers"
)

// TestDynamicPartitioningFile: 10,000 records over 1,000 distinct keys go
// through the real daemon with a metadata_extraction processor; every
// object holds only records of its key and the record total is preserved.
// Records that are not JSON are dead-lettered, not dropped.
func TestDynamicPartitioningFile(t *testing.T) {
	testDynamicPartitioning(t, `
      type: file
      path: out`, func(dir string) map[string][]byte {
		root := filepath.Join(dir, "out")
		objs := map[string][]byte{}
		for _, key := range objects(t, root) {
			b, err := os.ReadFile(filepath.Join(root, key))
			if err != nil {
				t.Fatal(err)
			}
			objs[key] = b
		}
		_ = filepath.WalkDir(filepath.Join(root, "errors"), func(p string, e fs.DirEntry, err error) error {
			if err == nil && !e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
				rel, _ := filepath.Rel(root, p)
				objs[filepath.ToSlash(rel)], _ = os.ReadFile(p)
			}
			return nil
		})
		return objs
	})
}

// TestDynamicPartitioningS3 is the same through the S3 destination on s3rver.
func TestDynamicPartitioningS3(t *testing.T) {
	const bucket = "sluice-parts"
	endpoint, _ := testpeers.StartS3rver(t, bucket)
	c := s3Client(endpoint)
	testDynamicPartitioning(t, "\n"+strings.TrimSuffix(s3rverDestination(bucket, endpoint), "\n"),
		func(string) map[string][]byte {
			objs, err := s3ObjectsErr(c, bucket, "")
			if err != nil {
				t.Logf("%v (polling again)", err)
			}
			return objs
		})
}

// testDynamicPartitioning runs the daemon with a destination block (its
// type and location) and reads every object back with objects.
func testDynamicPartitioning(t *testing.T, dest string, objects func(dir string) map[string][]byte) {
	d, dir := startWith(t, `streams:
  parts:
    buffering: {size: 1, interval: 1}
    processors:
      - type: metadata_extraction
        query: '{customer: .customer}'
    destination:`+dest+`
      append_newline: true
      prefix: "customer=!{partitionKeyFromQuery:customer}/"
      error_output_prefix: "errors/!{firehose:error-output-type}/"
      max_active_partitions: 1000
`)
	var in strings.Builder
	const n, keys = 10000, 1000
	for i := range n {
		fmt.Fprintf(&in, `{"customer":"c%04d","seq":%d}`+"\n", i%keys, i)
	}
	in.WriteString("not json at all\n")
	src := filepath.Join(dir, "in.ndjson")
	if err := os.WriteFile(src, []byte(in.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(sluiceBin, "put", "--endpoint", "http://"+d.addr, "--stream", "parts", "--file", src).CombinedOutput()
	if err != nil {
		t.Fatalf("sluice put: %v\n%s", err, out)
	}
	count := func() (total int, bad []string, perKey map[string]int) {
		perKey = map[string]int{}
		for key, b := range objects(dir) {
			if strings.HasPrefix(key, "errors/") {
				continue
			}
			want, _, _ := strings.Cut(strings.TrimPrefix(key, "customer="), "/")
			for _, line := range splitLines(b) {
				var r struct{ Customer string }
				if err := json.Unmarshal([]byte(line), &r); err != nil || r.Customer != want {
					bad = append(bad, key+": "+line)
				}
				perKey[r.Customer]++
				total++
			}
		}
		return total, bad, perKey
	}
	if !waitFor(20*time.Second, func() bool { total, _, _ := count(); return total >= n }) {
		total, _, _ := count()
		t.Fatalf("%d of %d records delivered", total, n)
	}
	total, bad, perKey := count()
	if total != n || len(bad) > 0 || len(perKey) != keys {
		t.Fatalf("total %d (want %d), %d keys (want %d), misplaced: %v", total, n, len(perKey), keys, bad[:min(len(bad), 5)])
	}
	for k, c := range perKey {
		if c != n/keys {
			t.Fatalf("key %s has %d records, want %d", k, c, n/keys)
		}
	}
	var dead []string
	for key, b := range objects(dir) {
		if strings.HasPrefix(key, "errors/metadata-extraction-failed/") {
			dead = append(dead, splitLines(b)...)
		}
	}
	if len(dead) != 1 {
		t.Fatalf("dead letters: %v", dead)
	}
	for _, line := range dead {
		var dl struct {
			ErrorCode string `json:"errorCode"`
			RawData   []byte `json:"rawData"`
		}
		if err := json.Unmarshal([]byte(line), &dl); err != nil || string(dl.RawData) != "not json at all" || dl.ErrorCode == "" {
			t.Fatalf("dead letter %s (%v)", line, err)
		}
	}
}
