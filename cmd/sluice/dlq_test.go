package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/deploy/testpeers"
)

// dlqCase is one error output of the end-to-end replay test.
type dlqCase struct {
	records int
	// errorOutput is the stream's error_output block (empty: the file
	// destination's own error_output_prefix).
	errorOutput string
	// deadLetters counts the dead letters in the error output.
	deadLetters func(t *testing.T, dir string) int
	rate        int
}

// TestDLQReplayEndToEnd: records dead-lettered by a failing WASM transform
// are listed and shown by sluice dlq, replayed after the module is fixed
// (the file swapped, POST /-/reload) and arrive exactly once, although the
// replay is SIGKILLed halfway (its state file then holds a partial run)
// and run again; a third run replays nothing. The error output is the
// file destination itself.
func TestDLQReplayEndToEnd(t *testing.T) {
	dlqEndToEnd(t, dlqCase{
		records: 3000,
		rate:    1000,
		deadLetters: func(t *testing.T, dir string) int {
			return len(deadLetters(t, filepath.Join(dir, "out"), "processing-failed"))
		},
	})
}

// TestDLQReplayEndToEndS3: the same with the stream's error_output in an
// S3 bucket (s3rver), under a prefix with expressions.
func TestDLQReplayEndToEndS3(t *testing.T) {
	endpoint, _ := testpeers.StartS3rver(t, "sluice-dlq")
	client := s3Client(endpoint)
	dlqEndToEnd(t, dlqCase{
		records: 800,
		rate:    400,
		errorOutput: "    error_output:\n" + s3rverDestination("sluice-dlq", endpoint) +
			"      error_output_prefix: \"dlq/!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd}/\"\n",
		deadLetters: func(t *testing.T, dir string) int {
			objs, err := s3ObjectsErr(client, "sluice-dlq", "dlq/processing-failed/")
			if err != nil {
				t.Logf("listing the bucket: %v", err)
				return -1
			}
			n := 0
			for _, b := range objs {
				n += len(splitLines(b))
			}
			return n
		},
	})
}

func dlqEndToEnd(t *testing.T, tc dlqCase) {
	broken := goGuest(t, "testdata/dlqbroken")
	fixed := goGuest(t, "../../examples/transforms/passthrough")
	dir := t.TempDir()
	module := filepath.Join(dir, "transform.wasm")
	copyFile(t, broken, module)
	addr := freeAddr(t)
	cfg := filepath.Join(dir, "sluice.yaml")
	conf := fmt.Sprintf(`listen: %s
streams:
  events:
    buffering: {size: 1, interval: 0}
    processors:
      - {type: wasm, module: %s}
    destination: {type: file, path: out, append_newline: true}
%s`, addr, module, tc.errorOutput)
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, cfg, dir, addr)

	// Records rec-00000 … : the broken module fails those ending in an
	// even digit, and a binary one.
	var all [][]byte
	for i := range tc.records {
		all = append(all, fmt.Appendf(nil, "rec-%05d", i))
	}
	binary := []byte("\xff\x00bin-8")
	all = append(all, binary)
	ctx := context.Background()
	for i := 0; i < len(all); i += 500 {
		ok, err := putBatch(ctx, http.DefaultClient, addr, "events", all[i:min(i+500, len(all))])
		if err != nil {
			t.Fatal(err)
		}
		for j, o := range ok {
			if !o {
				t.Fatalf("record %d refused", i+j)
			}
		}
	}
	failing := tc.records/2 + 1
	out := filepath.Join(dir, "out")
	if !waitFor(30*time.Second, func() bool {
		return len(deliveredLinesIn(t, out)) == tc.records/2 && tc.deadLetters(t, dir) == failing
	}) {
		t.Fatalf("delivered %d, dead letters %d; want %d and %d\n%s", len(deliveredLinesIn(t, out)), tc.deadLetters(t, dir), tc.records/2, failing, d.log.String())
	}

	dlq := func(args ...string) (string, error) {
		t.Helper()
		cmd := exec.Command(sluiceBin, append(append([]string{"dlq"}, args[:1]...), append([]string{"-c", cfg, "--data-dir", dir}, args[1:]...)...)...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		if err != nil {
			return stdout.String(), fmt.Errorf("sluice dlq %v: %w\n%s%s", args, err, stdout.String(), stderr.String())
		}
		return stdout.String(), nil
	}
	must := func(args ...string) string {
		t.Helper()
		s, err := dlq(args...)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	// ls: one row, every dead letter, none replayed.
	ls := must("ls")
	row := dlqRow(t, ls, "events", "processing-failed", "Lambda.ProcessingFailedStatus")
	if row[3] != fmt.Sprint(failing) || row[4] != "0" {
		t.Fatalf("ls row %v, want %d records, 0 replayed:\n%s", row, failing, ls)
	}
	var group dlqGroup
	if err := json.Unmarshal([]byte(must("ls", "--json", "--stream", "events")), &group); err != nil ||
		group.Records != failing || group.Objects < 2 || group.Oldest <= 0 || group.Newest < group.Oldest {
		t.Fatalf("ls --json: %+v %v", group, err)
	}

	// show: every record with its reason and its original data.
	shown := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(must("show", "--stream", "events", "--limit", "0", "--json")))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r dlqRecordJSON
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("show --json line %q: %v", sc.Text(), err)
		}
		raw, _ := base64.StdEncoding.DecodeString(r.RawData)
		if r.ErrorCode != "Lambda.ProcessingFailedStatus" || !strings.Contains(r.ErrorMessage, "broken transform: even record ") ||
			r.OutputType != "processing-failed" || r.Object == "" || r.Line < 1 || r.ArrivalTimestamp <= 0 {
			t.Errorf("shown %+v", r)
		}
		switch {
		case bytes.Equal(raw, binary):
			if r.Data != nil {
				t.Errorf("binary record shown as text %q", *r.Data)
			}
		case r.Data == nil || *r.Data != string(raw):
			t.Errorf("text record %q shown as %v", raw, r.Data)
		}
		shown[string(raw)] = true
	}
	if len(shown) != failing {
		t.Fatalf("show listed %d distinct records, want %d", len(shown), failing)
	}
	for i := 0; i < tc.records; i += 2 {
		if !shown[fmt.Sprintf("rec-%05d", i)] {
			t.Fatalf("rec-%05d not shown", i)
		}
	}
	text := must("show", "--stream", "events", "--code", "Lambda.ProcessingFailedStatus", "--limit", "2")
	if strings.Count(text, "  data:    rec-") != 2 || !strings.Contains(text, "  reason:  Lambda.ProcessingFailedStatus: ProcessingFailed status set for record: broken transform: even record rec-") ||
		!strings.Contains(text, "(first 2 records shown") || !strings.Contains(text, "  object:  ") {
		t.Errorf("show:\n%s", text)
	}

	// Fix the module: the file swapped, the configuration reloaded.
	copyFile(t, fixed, module) // atomically: a temporary file renamed
	if code, body := reload(t, addr); code != http.StatusOK {
		t.Fatalf("reload: HTTP %d %s\n%s", code, body, d.log.String())
	}

	// Replay, killed halfway.
	statePath := filepath.Join(dir, "dlq", "events.json")
	replayArgs := []string{"dlq", "replay", "-c", cfg, "--data-dir", dir, "--stream", "events", "--batch", "20",
		"--rate", fmt.Sprint(tc.rate), "--progress-every", "100ms"}
	first := exec.Command(sluiceBin, replayArgs...)
	firstOut := &lockedBuffer{}
	first.Stdout, first.Stderr = firstOut, firstOut
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = first.Wait() }()
	if !waitFor(30*time.Second, func() bool {
		st, err := readReplayState(statePath)
		return err == nil && st.Run != nil && st.Run.Acked >= failing/5
	}) {
		_ = first.Process.Kill()
		wg.Wait()
		t.Fatalf("the replay made no progress:\n%s", firstOut.String())
	}
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if ws, ok := first.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("the first replay was not killed (it ended: %v), so the kill did not land mid-run:\n%s", first.ProcessState, firstOut.String())
	}
	st, err := readReplayState(statePath)
	if err != nil {
		t.Fatal(err)
	}
	if st.Run == nil || st.Run.Acked <= 0 || st.Run.Acked >= st.Run.Records || st.Run.Records != failing || len(st.Replayed) != 0 {
		t.Fatalf("state after the kill, want a partial run of %d records: %+v", failing, st.Run)
	}
	if !strings.Contains(firstOut.String(), "replayed ") || !strings.Contains(firstOut.String(), "records/s") {
		t.Errorf("no progress lines:\n%s", firstOut.String())
	}
	id := st.Run.ID
	t.Logf("killed run %s at %d of %d records", id, st.Run.Acked, st.Run.Records)
	// As if the kill had landed after the daemon stored the last two
	// batches but before their answers were recorded: the resumed run
	// sends them again, and the daemon must skip them.
	rewind := min(40, st.Run.Acked)
	st.Run.Acked -= rewind
	if err := st.write(statePath); err != nil {
		t.Fatal(err)
	}

	// Again, to the end.
	second, err := exec.Command(sluiceBin, replayArgs...).CombinedOutput()
	if err != nil {
		t.Fatalf("second replay: %v\n%s", err, second)
	}
	if !strings.Contains(string(second), "resuming replay run "+id) || !strings.Contains(string(second), "replay run "+id+" of events into events: done") ||
		!strings.Contains(string(second), "\nfailures: 0\n") {
		t.Fatalf("second replay:\n%s", second)
	}
	stored, skipped := summaryCount(t, string(second), "records replayed (stored)"), summaryCount(t, string(second), "skipped as already stored")
	if skipped < rewind || stored+skipped != st.Run.Records-st.Run.Acked {
		t.Fatalf("second replay stored %d and skipped %d of the %d records from %d (at least %d held by the daemon already)\n%s",
			stored, skipped, st.Run.Records-st.Run.Acked, st.Run.Acked, rewind, second)
	}
	want := map[string]bool{}
	for _, r := range all {
		want[string(r)] = true
	}
	if !waitFor(30*time.Second, func() bool { return len(deliveredLinesIn(t, out)) == len(all) }) {
		t.Fatalf("delivered %d distinct records of %d\n%s", len(deliveredLinesIn(t, out)), len(all), d.log.String())
	}
	time.Sleep(500 * time.Millisecond) // a duplicate would be delivered by now
	for line, n := range deliveredLinesIn(t, out) {
		if n != 1 || !want[line] {
			t.Errorf("delivered %q %d times", line, n)
		}
	}
	if n := tc.deadLetters(t, dir); n != failing {
		t.Errorf("%d dead letters after the replay, want the %d of before", n, failing)
	}

	// A third run has nothing to do; ls shows everything replayed.
	third := must("replay", "--stream", "events")
	if !strings.Contains(third, "nothing to replay") || !strings.Contains(third, "records replayed (stored): 0\n") {
		t.Fatalf("third replay:\n%s", third)
	}
	ls = must("ls", "--stream", "events")
	if row := dlqRow(t, ls, "events", "processing-failed", "Lambda.ProcessingFailedStatus"); row[3] != fmt.Sprint(failing) || row[4] != fmt.Sprint(failing) {
		t.Fatalf("ls after the replay: %v\n%s", row, ls)
	}
	if strings.Contains(ls, "unfinished") {
		t.Errorf("ls reports an unfinished run:\n%s", ls)
	}
}

// dlqRow returns the fields of ls's table row for stream, type and code.
func dlqRow(t *testing.T, ls, stream, typ, code string) []string {
	t.Helper()
	for _, l := range strings.Split(ls, "\n") {
		f := strings.Fields(l)
		if len(f) == 8 && f[0] == stream && f[1] == typ && f[2] == code {
			return f
		}
	}
	t.Fatalf("no row for %s %s %s in:\n%s", stream, typ, code, ls)
	return nil
}
