package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/firehose"
)

func randomKey(t *testing.T) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// hashFiles maps every file under dir to a hash of its contents.
func hashFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		out[p] = hex.EncodeToString(sum[:])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// holding lists the files under dir whose contents hold needle.
func holding(t *testing.T, dir, needle string) []string {
	t.Helper()
	var hits []string
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte(needle)) {
			hits = append(hits, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hits
}

// putAll sends n marked records of generation gen in batches of 500 and
// returns those acknowledged (a batch whose answer did not arrive whole is
// not counted, and is not sent again).
func putAll(t *testing.T, addr, stream, marker string, gen, n int) []string {
	t.Helper()
	var acked []string
	c := &http.Client{Timeout: 30 * time.Second}
	for from := 0; from < n; from += 500 {
		var recs [][]byte
		for i := from; i < min(n, from+500); i++ {
			recs = append(recs, fmt.Appendf(nil, `{"gen":%d,"n":%d,"secret":"%s-%d-%d"}`, gen, i, marker, gen, i))
		}
		ok, err := putBatch(context.Background(), c, addr, stream, recs)
		if err != nil {
			t.Fatalf("put: %v", err)
		}
		for i, good := range ok {
			if good {
				acked = append(acked, string(recs[i]))
			}
		}
	}
	return acked
}

// decryptedLines runs `sluice decrypt` over every object under root, as a
// user reads an encrypted file destination, and counts each line.
func decryptedLines(t *testing.T, cfg, root string, env []string) map[string]int {
	t.Helper()
	var objects []string
	_ = filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			objects = append(objects, p)
		}
		return nil
	})
	seen := map[string]int{}
	if len(objects) == 0 {
		return seen
	}
	cmd := exec.Command(sluiceBin, append([]string{"decrypt", "-c", cfg}, objects...)...)
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("sluice decrypt: %v\n%s", err, stderr.String())
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 2<<20)
	for sc.Scan() {
		seen[sc.Text()]++
	}
	return seen
}

// TestEncryptionAtRest: with encryption on, records holding a marker are
// acknowledged and the daemon is killed (kill -9) with them in its
// buffer: no file under the data directory holds the marker. A start
// with the wrong key under the key's id fails, naming the stream and the
// key id, and changes nothing on disk. A start with the old key and a new
// current one (rotation) delivers the first generation and a second one
// written under the new key, each record once, into objects that are
// encrypted too (read back with `sluice decrypt`); DescribeDeliveryStream
// reports the encryption. Once the old key's records are delivered the
// daemon starts without it.
func TestEncryptionAtRest(t *testing.T) {
	dir := t.TempDir()
	keyDir := t.TempDir()
	addr := freeAddr(t)
	marker := "SLUICE-MARKER-" + randomKey(t)[:16]
	k1, k2 := randomKey(t), randomKey(t)
	k2File := filepath.Join(keyDir, "k2")
	if err := os.WriteFile(k2File, []byte(k2+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"SLUICE_TEST_K1=" + k1}
	const stream = "secure"
	enc1 := `encryption:
  keys:
    - id: k1
      key: ${SLUICE_TEST_K1}
`
	// Generation 1: held in the buffer (nothing is due for 15 minutes).
	cfg := writeConfig(t, dir, addr, stream, 128, 900, enc1)
	d := startDaemonEnv(t, cfg, dir, addr, env)
	gen1 := putAll(t, addr, stream, marker, 1, 3000)
	if len(gen1) < 2900 {
		t.Fatalf("only %d of 3000 records acknowledged", len(gen1))
	}
	d.kill()
	if hits := holding(t, dir, marker); len(hits) > 0 {
		t.Fatalf("after kill -9 these files hold the marker in the clear: %v", hits)
	}
	var bufBytes int64
	_ = filepath.WalkDir(filepath.Join(dir, "buffer", stream), func(p string, e fs.DirEntry, err error) error {
		if fi, err2 := os.Stat(p); err == nil && err2 == nil && !e.IsDir() {
			bufBytes += fi.Size()
		}
		return nil
	})
	if bufBytes < int64(len(gen1))*40 {
		t.Fatalf("the buffer holds %d bytes for %d records: they are not there", bufBytes, len(gen1))
	}

	// The wrong key under id k1: the start fails and nothing changes.
	before := hashFiles(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	run := exec.CommandContext(ctx, sluiceBin, "run", "-c", cfg, "--data-dir", dir)
	run.Env = append(os.Environ(), "SLUICE_TEST_K1="+randomKey(t))
	out, err := run.CombinedOutput()
	if err == nil || ctx.Err() != nil {
		t.Fatalf("a start with the wrong key did not fail: %v\n%s", err, out)
	}
	if s := string(out); !strings.Contains(s, "stream "+stream) || !strings.Contains(s, "key k1") || !strings.Contains(s, "does not decrypt") {
		t.Fatalf("the wrong key's error does not name the stream, the key id and the cause:\n%s", out)
	}
	if strings.Contains(string(out), marker) {
		t.Fatalf("the failed start printed record data:\n%s", out)
	}
	after := hashFiles(t, dir)
	for p, h := range before {
		if b := filepath.Base(p); after[p] != h && b != ".lock" && b != "lock" { // a lock names its owner
			t.Logf("%s", out)
			t.Fatalf("the failed start changed or deleted %s", p)
		}
	}
	// No key at all: the same.
	run = exec.CommandContext(ctx, sluiceBin, "run", "-c", writeConfig(t, dir, addr, stream, 128, 900, ""), "--data-dir", dir)
	if out, err := run.CombinedOutput(); err == nil || !strings.Contains(string(out), `encrypted under key \"k1\"`) {
		t.Fatalf("a start without keys: %v\n%s", err, out)
	}

	// Rotation: k2 current, k1 kept to read generation 1.
	rotated := `encryption:
  key_id: k2
  keys:
    - id: k2
      key_file: ` + k2File + `
    - id: k1
      key: ${SLUICE_TEST_K1}
`
	cfg = writeConfig(t, dir, addr, stream, 1, 1, rotated)
	d = startDaemonEnv(t, cfg, dir, addr, env)
	client := firehose.New(firehose.Options{Region: "us-east-1", BaseEndpoint: aws.String("http://" + addr),
		Credentials: aws.AnonymousCredentials{}, RetryMaxAttempts: 1})
	desc, err := client.DescribeDeliveryStream(context.Background(), &firehose.DescribeDeliveryStreamInput{DeliveryStreamName: aws.String(stream)})
	if err != nil {
		t.Fatal(err)
	}
	e := desc.DeliveryStreamDescription.DeliveryStreamEncryptionConfiguration
	if e == nil || e.Status != "ENABLED" || e.KeyType != "CUSTOMER_MANAGED_CMK" || !strings.HasSuffix(aws.ToString(e.KeyARN), ":key/k2") {
		t.Fatalf("DeliveryStreamEncryptionConfiguration = %+v", e)
	}
	gen2 := putAll(t, addr, stream, marker, 2, 2000)
	want := append(append([]string{}, gen1...), gen2...)
	out2 := filepath.Join(dir, "out")
	var seen map[string]int
	if !waitFor(60*time.Second, func() bool {
		seen = decryptedLines(t, cfg, out2, env)
		return len(seen) >= len(want)
	}) {
		t.Fatalf("delivered %d distinct records of %d", len(seen), len(want))
	}
	for _, r := range want {
		if seen[r] != 1 {
			t.Fatalf("record %s delivered %d times", r, seen[r])
		}
	}
	if len(seen) != len(want) {
		t.Fatalf("delivered %d distinct records, %d were acknowledged", len(seen), len(want))
	}
	if hits := holding(t, dir, marker); len(hits) > 0 {
		t.Fatalf("these files hold the marker in the clear: %v", hits)
	}
	if err := d.stop(20 * time.Second); err != nil {
		t.Fatal(err)
	}

	// Everything under k1 is delivered: k2 alone starts it.
	only2 := `encryption:
  keys:
    - id: k2
      key_file: ` + k2File + `
`
	d = startDaemonEnv(t, writeConfig(t, dir, addr, stream, 1, 1, only2), dir, addr, nil)
	if err := d.stop(20 * time.Second); err != nil {
		t.Fatal(err)
	}
}
