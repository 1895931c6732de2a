package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/destinations/object"
	"github.com/sluice-dev/sluice/destinations/object/filestore"
	"github.com/sluice-dev/sluice/ingest/sigv4"
	"github.com/sluice-dev/sluice/pipeline"
)

// fakeDaemon answers PutRecordBatch under the replay contract the real
// daemon keeps (ingest/firehoseapi/replay.go, pipeline/assemble/router.go):
// per stream and run id, a record is stored only if its number is above
// the last one stored; the others are answered as successes with an
// empty RecordId and counted in X-Sluice-Replay-Skipped. Refusals are a
// suffix of the request. It can refuse a suffix ("Slow down."), lose the
// answer after storing (the connection closed), and break the contract.
type fakeDaemon struct {
	t        *testing.T
	mu       sync.Mutex
	last     map[string]int      // stream/run → last stored number
	stored   map[string][]string // stream → data stored, in order
	runs     map[string]bool
	requests int
	skipped  int

	throttleEvery int // every n-th request refuses the second half
	loseEvery     int // every n-th request stores, then drops the connection
	onRequest     func(n int)
	verifier      *sigv4.Verifier
	noSkipHeader  bool
	nonSuffix     bool
	status        int // answer every request with this status and an error
}

func newFakeDaemon(t *testing.T) (*fakeDaemon, *httptest.Server) {
	f := &fakeDaemon{t: t, last: map[string]int{}, stored: map[string][]string{}, runs: map[string]bool{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakeDaemon) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	if f.verifier != nil {
		if _, err := f.verifier.Verify(r, body); err != nil {
			http.Error(w, `{"__type":"InvalidSignatureException","message":"`+err.Error()+`"}`, http.StatusBadRequest)
			return
		}
	}
	if r.Header.Get("X-Amz-Target") != "Firehose_20150804.PutRecordBatch" {
		http.Error(w, "not a put", http.StatusBadRequest)
		return
	}
	var req struct {
		DeliveryStreamName string
		Records            []struct{ Data string }
	}
	if err := json.Unmarshal(body, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	id := r.Header.Get(replayIDHeader)
	seq, err := strconv.Atoi(r.Header.Get(replaySeqHeader))
	if len(id) != 16 || err != nil {
		f.t.Errorf("replay headers %q %q", id, r.Header.Get(replaySeqHeader))
		http.Error(w, "bad replay headers", http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.requests++
	n := f.requests
	if f.status != 0 {
		f.mu.Unlock()
		http.Error(w, `{"__type":"ResourceNotFoundException","message":"Firehose nope not found"}`, f.status)
		return
	}
	f.runs[id] = true
	cut := len(req.Records)
	if f.throttleEvery > 0 && n%f.throttleEvery == 0 {
		cut /= 2
	}
	key := req.DeliveryStreamName + "/" + id
	last, have := f.last[key]
	type entry struct {
		RecordId     *string `json:",omitempty"`
		ErrorCode    string  `json:",omitempty"`
		ErrorMessage string  `json:",omitempty"`
	}
	var out []entry
	skipped := 0
	for i, rec := range req.Records {
		s := seq + i
		switch {
		case i >= cut:
			out = append(out, entry{ErrorCode: "ServiceUnavailableException", ErrorMessage: "Slow down."})
		case have && s <= last:
			skipped++
			out = append(out, entry{RecordId: new(string)})
		default:
			data, _ := base64.StdEncoding.DecodeString(rec.Data)
			f.stored[req.DeliveryStreamName] = append(f.stored[req.DeliveryStreamName], string(data))
			f.last[key] = s
			rid := fmt.Sprintf("rid-%d", s)
			out = append(out, entry{RecordId: &rid})
		}
	}
	if f.nonSuffix && len(out) > 2 {
		out[0] = entry{ErrorCode: "InternalFailure", ErrorMessage: "x"}
	}
	f.skipped += skipped
	onRequest := f.onRequest
	f.mu.Unlock()
	if onRequest != nil {
		onRequest(n)
	}
	if f.loseEvery > 0 && n%f.loseEvery == 0 {
		// Stored, but the answer never arrives.
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}
	if !f.noSkipHeader {
		w.Header().Set(replaySkippedHeader, strconv.Itoa(skipped))
	}
	failed := 0
	for _, e := range out {
		if e.ErrorCode != "" {
			failed++
		}
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"Encrypted": false, "FailedPutCount": failed, "RequestResponses": out})
}

// storedOnce fails unless the stream's stored records are exactly want,
// each once.
func (f *fakeDaemon) storedOnce(t *testing.T, stream string, want []string) {
	t.Helper()
	f.mu.Lock()
	got := slices.Clone(f.stored[stream])
	f.mu.Unlock()
	count := map[string]int{}
	for _, g := range got {
		count[g]++
	}
	for _, w := range want {
		if count[w] != 1 {
			t.Errorf("record %q stored %d times", w, count[w])
		}
		delete(count, w)
	}
	if len(count) > 0 {
		t.Errorf("unexpected records stored: %v", count)
	}
}

// dlqFixture is a configuration whose stream "src" has dead letters in
// its file destination: batches of processing-failed records and one of
// delivery-failed ones.
type dlqFixture struct {
	dir, cfg string
	// processing and delivery are the records' data by output type.
	processing, delivery []string
}

func newDLQFixture(t *testing.T, extra string) *dlqFixture {
	t.Helper()
	dir := t.TempDir()
	fx := &dlqFixture{dir: dir, cfg: filepath.Join(dir, "sluice.yaml")}
	conf := "listen: 127.0.0.1:1\ndata_dir: " + dir + "\n" + extra + `streams:
  src:
    destination: {type: file, path: out}
  other:
    destination: {type: file, path: other}
`
	if err := os.WriteFile(fx.cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	oc, err := object.Compile(object.Options{}, filestore.Rule)
	if err != nil {
		t.Fatal(err)
	}
	st, err := filestore.New(filepath.Join(dir, "out"), "src", nil)
	if err != nil {
		t.Fatal(err)
	}
	w, err := object.NewWriter(oc, st, "src", object.Location{Kind: "file", Code: "File"}, pipeline.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now().Add(-time.Hour)
	pos := pipeline.Position(0)
	for b, n := range []int{1, 120, 7, 260, 33, 90} {
		var dls []pipeline.DeadLetter
		for i := range n {
			data := fmt.Sprintf("rec-%d-%d", b, i)
			typ := pipeline.OutputProcessingFailed
			if b == 2 {
				typ = pipeline.OutputDeliveryFailed
				fx.delivery = append(fx.delivery, data)
			} else {
				fx.processing = append(fx.processing, data)
			}
			dls = append(dls, pipeline.DeadLetter{Record: pipeline.Record{Data: []byte(data), Arrived: t0.Add(time.Duration(b) * time.Minute)},
				Code: "Lambda.ProcessingFailedStatus", Message: "bad", OutputType: typ, Attempts: 1})
		}
		if err := w.WriteDeadLetters(context.Background(), pipeline.BatchID{First: pos, End: pos + pipeline.Position(n)}, "src", dls); err != nil {
			t.Fatal(err)
		}
		pos += pipeline.Position(n)
	}
	return fx
}

// replay runs `sluice dlq replay` in process.
func (fx *dlqFixture) replay(endpoint string, args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := run(append([]string{"dlq", "replay", "-c", fx.cfg, "--stream", "src", "--endpoint", endpoint}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

func (fx *dlqFixture) state(t *testing.T) *replayState {
	t.Helper()
	st, err := readReplayState(dlqStatePath(fx.dir, "src"))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func summaryCount(t *testing.T, out, label string) int {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, label+": "); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("%s: %q", label, l)
			}
			return n
		}
	}
	t.Fatalf("no %q line in:\n%s", label, out)
	return 0
}

// TestDLQReplayResumesExactlyOnce: a replay throttled and losing answers
// (the daemon stored, the replay never heard) and stopped halfway
// resumes its run (same id, from the acknowledged count) and every dead
// letter is stored exactly once; a third run has nothing to replay, and
// a new dead letter is then replayed in a run of its own.
func TestDLQReplayResumesExactlyOnce(t *testing.T) {
	fx := newDLQFixture(t, "")
	f, srv := newFakeDaemon(t)
	f.throttleEvery, f.loseEvery = 3, 4
	all := append(slices.Clone(fx.processing), fx.delivery...)
	total := len(all)

	// First run: stopped (the process's context ends, as on SIGTERM)
	// after a dozen requests.
	ctx, cancel := context.WithCancel(context.Background())
	f.onRequest = func(n int) {
		if n == 12 {
			cancel()
		}
	}
	var out, errOut bytes.Buffer
	r := &replayRunner{fx: fx, endpoint: srv.URL}
	code := r.runCtx(ctx, &out, &errOut, "--batch", "40")
	if code != 1 || !strings.Contains(errOut.String(), "interrupted") {
		t.Fatalf("first run: exit %d\n%s\n%s", code, out.String(), errOut.String())
	}
	st := fx.state(t)
	if st.Run == nil || st.Run.Acked == 0 || st.Run.Acked >= total || st.Run.Records != total || len(st.Run.Objects) != 6 || len(st.Replayed) != 0 {
		t.Fatalf("state after the interruption: %+v", st.Run)
	}
	if !slices.IsSortedFunc(st.Run.Objects, func(a, b runObject) int { return strings.Compare(a.Key, b.Key) }) {
		t.Errorf("run objects not in key order: %+v", st.Run.Objects)
	}
	id, acked := st.Run.ID, st.Run.Acked

	// Second run: resumes the run to its end.
	f.onRequest = nil
	code, stdout, stderr := fx.replay(srv.URL, "--batch", "40")
	if code != 0 {
		t.Fatalf("second run: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "resuming replay run "+id+" of src into src at record "+strconv.Itoa(acked)) {
		t.Errorf("second run did not resume %s at %d:\n%s", id, acked, stdout)
	}
	stored, skipped := summaryCount(t, stdout, "records replayed (stored)"), summaryCount(t, stdout, "skipped as already stored")
	if stored+skipped != total-acked || summaryCount(t, stdout, "failures") != 0 {
		t.Errorf("second run: stored %d + skipped %d, want %d\n%s", stored, skipped, total-acked, stdout)
	}
	if f.skipped == 0 {
		t.Error("no answer was lost after the daemon stored: the test did not exercise resending")
	}
	if len(f.runs) != 1 || !f.runs[id] {
		t.Errorf("runs seen by the daemon: %v, want only %s", f.runs, id)
	}
	f.storedOnce(t, "src", all)
	st = fx.state(t)
	if st.Run != nil || len(st.Replayed) != 6 {
		t.Fatalf("state after the run: %+v", st)
	}

	// Third run: nothing left.
	reqs := f.requests
	code, stdout, _ = fx.replay(srv.URL)
	if code != 0 || !strings.Contains(stdout, "nothing to replay") || summaryCount(t, stdout, "records replayed (stored)") != 0 || f.requests != reqs {
		t.Fatalf("third run: exit %d, %d requests\n%s", code, f.requests-reqs, stdout)
	}

	// A new dead-letter object is a new run, into another stream.
	oc, _ := object.Compile(object.Options{}, filestore.Rule)
	store, _ := filestore.New(filepath.Join(fx.dir, "out"), "src", nil)
	w, _ := object.NewWriter(oc, store, "src", object.Location{Kind: "file"}, pipeline.Deps{})
	if err := w.WriteDeadLetters(context.Background(), pipeline.BatchID{First: 1000, End: 1001}, "src",
		[]pipeline.DeadLetter{{Record: pipeline.Record{Data: []byte("late"), Arrived: time.Now()}, Code: "C", OutputType: pipeline.OutputProcessingFailed}}); err != nil {
		t.Fatal(err)
	}
	f.throttleEvery, f.loseEvery = 0, 0
	code, stdout, stderr = fx.replay(srv.URL, "--to", "other")
	if code != 0 || summaryCount(t, stdout, "records replayed (stored)") != 1 || summaryCount(t, stdout, "objects completed") != 1 {
		t.Fatalf("late run: exit %d\n%s\n%s", code, stdout, stderr)
	}
	f.storedOnce(t, "other", []string{"late"})
	if len(f.runs) != 2 {
		t.Errorf("runs %v", f.runs)
	}
}

// replayRunner runs the command with a context of the test's (run, the
// dispatcher, makes its own from the signals).
type replayRunner struct {
	fx       *dlqFixture
	endpoint string
}

func (r *replayRunner) runCtx(ctx context.Context, stdout, stderr io.Writer, args ...string) int {
	return cmdDLQ(ctx, append([]string{"replay", "-c", r.fx.cfg, "--stream", "src", "--endpoint", r.endpoint}, args...), stdout, stderr)
}

// TestDLQReplayTypeAndUnfinishedRun: --type replays that type only; an
// unfinished run is finished before another (a different --to or --type
// is refused, naming the run), and a second replay of the stream at the
// same time is refused by the lock.
func TestDLQReplayTypeAndUnfinishedRun(t *testing.T) {
	fx := newDLQFixture(t, "")
	f, srv := newFakeDaemon(t)
	ctx, cancel := context.WithCancel(context.Background())
	f.onRequest = func(n int) {
		if n == 2 {
			cancel()
		}
	}
	r := &replayRunner{fx: fx, endpoint: srv.URL}
	var out, errOut bytes.Buffer
	if code := r.runCtx(ctx, &out, &errOut, "--type", "processing-failed", "--batch", "10"); code != 1 {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errOut.String())
	}
	st := fx.state(t)
	if st.Run == nil || st.Run.Type != "processing-failed" || st.Run.Records != len(fx.processing) {
		t.Fatalf("run %+v", st.Run)
	}
	for _, args := range [][]string{{"--to", "other"}, {"--type", "delivery-failed"}} {
		code, stdout, stderr := fx.replay(srv.URL, args...)
		if code != 1 || !strings.Contains(stderr, "run "+st.Run.ID) || !strings.Contains(stderr, "unfinished") {
			t.Errorf("%v: exit %d\n%s%s", args, code, stdout, stderr)
		}
	}
	unlock, err := lockReplay(filepath.Join(fx.dir, "dlq", "src.lock"))
	if err != nil {
		t.Fatal(err)
	}
	code, _, stderr := fx.replay(srv.URL)
	unlock()
	if code != 1 || !strings.Contains(stderr, "another sluice dlq replay") {
		t.Errorf("a concurrent replay: exit %d %s", code, stderr)
	}
	f.onRequest = nil
	if code, stdout, stderr := fx.replay(srv.URL); code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	f.storedOnce(t, "src", fx.processing)
	// The delivery-failed object is left for a run of its own.
	code, stdout, _ := fx.replay(srv.URL)
	if code != 0 || summaryCount(t, stdout, "records replayed (stored)") != len(fx.delivery) {
		t.Fatalf("exit %d\n%s", code, stdout)
	}
	f.storedOnce(t, "src", append(slices.Clone(fx.processing), fx.delivery...))
}

// TestDLQReplayRefusesBrokenAnswers: a daemon that does not deduplicate
// (no X-Sluice-Replay-Skipped), one whose refusals are not a suffix, and
// a request refused for good each stop the replay with an error saying
// so; the run stays resumable.
func TestDLQReplayRefusesBrokenAnswers(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(*fakeDaemon)
		want  string
	}{
		{"no dedup", func(f *fakeDaemon) { f.noSkipHeader = true }, "does not deduplicate replays"},
		{"not a suffix", func(f *fakeDaemon) { f.nonSuffix = true }, "does not keep the replay contract"},
		{"refused", func(f *fakeDaemon) { f.status = http.StatusBadRequest }, "HTTP 400: {\"__type\":\"ResourceNotFoundException\""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := newDLQFixture(t, "")
			f, srv := newFakeDaemon(t)
			tc.setup(f)
			code, stdout, stderr := fx.replay(srv.URL)
			if code != 1 || !strings.Contains(stderr, tc.want) || !strings.Contains(stderr, "run the same command again") {
				t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
			}
			if st := fx.state(t); st.Run == nil || st.Run.Acked != 0 {
				t.Fatalf("state %+v", st.Run)
			}
		})
	}
}

// TestDLQReplaySigV4: with auth keys in the configuration, every put is
// signed with the first key allowed to PutRecordBatch into the target
// (checked by the daemon's own verifier).
func TestDLQReplaySigV4(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	fx := newDLQFixture(t, `auth:
  region: eu-west-3
  keys:
    - access_key_id: AKIDREADONLY0000000
      secret_access_key: ro-secret
      allow: [{actions: ["firehose:DescribeDeliveryStream"]}]
    - access_key_id: AKIDWRITER000000000
      secret_access_key: writer-secret
      allow: [{actions: ["firehose:PutRecordBatch"], streams: ["src"]}]
`)
	f, srv := newFakeDaemon(t)
	keys := map[string]sigv4.Key{"AKIDWRITER000000000": {ID: "AKIDWRITER000000000", Secret: "writer-secret"}}
	f.verifier = &sigv4.Verifier{Service: "firehose", Region: "eu-west-3", Lookup: func(id string) (sigv4.Key, bool) { k, ok := keys[id]; return k, ok }}
	code, stdout, stderr := fx.replay(srv.URL, "--batch", "100")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	f.storedOnce(t, "src", append(slices.Clone(fx.processing), fx.delivery...))
	// No key may put into "other".
	code, _, stderr = fx.replay(srv.URL, "--to", "other")
	if code != 1 || !strings.Contains(stderr, "no key of") {
		t.Fatalf("exit %d %s", code, stderr)
	}
}

// TestDLQProgressLines: off a terminal, progress is plain lines; on one,
// a bar redrawn in place.
func TestDLQProgressLines(t *testing.T) {
	var b bytes.Buffer
	p := newReplayProgress(&b, false, time.Nanosecond, 200, 0)
	time.Sleep(time.Millisecond)
	p.update(50)
	p.finish(200)
	if got := b.String(); !strings.HasPrefix(got, "replayed 50/200 records (25%), ") || strings.Contains(got, "\r") {
		t.Errorf("plain progress %q", got)
	}
	b.Reset()
	p = newReplayProgress(&b, true, time.Hour, 200, 0)
	p.last = time.Time{}
	p.update(100)
	p.finish(200)
	if got := b.String(); !strings.HasPrefix(got, "\r[===============>              ] 100/200 records  50%") ||
		!strings.Contains(got, "\r[==============================] 200/200 records 100%") || !strings.HasSuffix(got, "\n") {
		t.Errorf("terminal progress %q", got)
	}
}

// TestDLQReplayAbandon: --abandon drops an unfinished run, marking its
// fully acknowledged objects replayed; the next run replays the others,
// putting again only the acknowledged records of the partial object and
// those whose answer was lost.
func TestDLQReplayAbandon(t *testing.T) {
	fx := newDLQFixture(t, "")
	f, srv := newFakeDaemon(t)
	if code, _, stderr := fx.replay(srv.URL, "--abandon"); code != 1 || !strings.Contains(stderr, "no unfinished run") {
		t.Fatalf("abandon without a run: exit %d %s", code, stderr)
	}
	ctx, cancel := context.WithCancel(context.Background())
	f.onRequest = func(n int) {
		if n == 3 {
			cancel()
		}
	}
	var out, errOut bytes.Buffer
	if code := (&replayRunner{fx: fx, endpoint: srv.URL}).runCtx(ctx, &out, &errOut, "--batch", "100"); code != 1 {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errOut.String())
	}
	before := fx.state(t).Run
	if before == nil || before.Acked != 200 {
		t.Fatalf("run %+v", before)
	}
	done := before.completedObjects()
	partial := before.Acked
	doneRecords := 0
	for _, o := range before.Objects[:done] {
		partial -= o.Records
		doneRecords += o.Records
	}
	code, stdout, stderr := fx.replay(srv.URL, "--abandon")
	if code != 0 || !strings.Contains(stdout, "abandoned replay run "+before.ID+" at record 200") {
		t.Fatalf("abandon: exit %d\n%s%s", code, stdout, stderr)
	}
	st := fx.state(t)
	if st.Run != nil || len(st.Replayed) != done {
		t.Fatalf("state after abandoning: %+v", st)
	}
	f.onRequest = nil
	code, stdout, stderr = fx.replay(srv.URL)
	if code != 0 || !strings.Contains(stdout, fmt.Sprintf("%d records in %d objects", before.Records-doneRecords, len(before.Objects)-done)) {
		t.Fatalf("next run: exit %d\n%s%s", code, stdout, stderr)
	}
	counts := map[string]int{}
	for _, s := range f.stored["src"] {
		counts[s]++
	}
	dup := 0
	for _, r := range append(slices.Clone(fx.processing), fx.delivery...) {
		switch counts[r] {
		case 1:
		case 2:
			dup++
		default:
			t.Errorf("%q stored %d times", r, counts[r])
		}
	}
	// The third request was stored, its answer lost to the interruption:
	// its 100 records are put again too.
	if dup != partial+100 {
		t.Errorf("%d records stored twice, want the %d acknowledged in the partial object and the 100 of the lost answer", dup, partial)
	}
}
