package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/sluice-dev/sluice/config"
	"github.com/sluice-dev/sluice/pipeline"
	"github.com/sluice-dev/sluice/pipeline/assemble"
)

// The replay protocol's headers (the daemon's side is in
// ingest/firehoseapi/replay.go).
const (
	replayIDHeader      = "X-Sluice-Replay-Id"
	replaySeqHeader     = "X-Sluice-Replay-Seq"
	replaySkippedHeader = "X-Sluice-Replay-Skipped"
)

// PutRecordBatch limits (Firehose's, which the daemon enforces).
const (
	replayMaxBatch       = 500
	replayMaxRecordBytes = 1_024_000
	replayMaxBatchBytes  = 4 << 20
)

func cmdDLQReplay(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("dlq replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	f := newDLQFlags(fs, "the stream whose dead letters to replay (required)")
	to := fs.String("to", "", "the stream to put them into (default: --stream)")
	typ := fs.String("type", "", "only dead letters of this error output type (default: every type)")
	endpoint := fs.String("endpoint", "", "the daemon's Firehose API (default: http://<listen>, https:// with tls)")
	batch := fs.Int("batch", replayMaxBatch, "records per PutRecordBatch (1..500)")
	rate := fs.Int("rate", 0, "at most this many records per second (0: as fast as the daemon takes them)")
	retryFor := fs.Duration("retry-for", 2*time.Minute, "give up when the daemon refuses or does not answer for this long")
	every := fs.Duration("progress-every", 5*time.Second, "time between progress lines when standard output is not a terminal")
	abandon := fs.Bool("abandon", false, "drop the stream's unfinished run instead of resuming it (its fully acknowledged objects are marked replayed; the records of the others the daemon already stored are put again by the next run)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *f.stream == "" || *batch < 1 || *batch > replayMaxBatch || *rate < 0 || *retryFor <= 0 || *every <= 0 || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "sluice dlq replay: --stream is required; 1 <= --batch <= 500; --rate >= 0; --retry-for and --progress-every positive")
		return 2
	}
	cfg, code := f.load("replay", stderr)
	if cfg == nil {
		return code
	}
	r := &replayer{
		source: *f.stream, batch: *batch, rate: *rate, retryFor: *retryFor,
		client: &http.Client{Timeout: time.Minute},
		out:    stdout, errOut: stderr,
		log: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	target := *to
	if target == "" {
		target = r.source
	}
	if ts, ok := cfg.Stream(target); !ok {
		fmt.Fprintf(stderr, "sluice dlq replay: no stream %q in %s\n", target, *f.config)
		return 1
	} else if ts.Type == config.StreamKinesisStreamAsSource {
		fmt.Fprintf(stderr, "sluice dlq replay: stream %s reads a Kinesis data stream and takes no puts: replay into a DirectPut stream with --to\n", target)
		return 1
	}
	r.endpoint = *endpoint
	if r.endpoint == "" {
		r.endpoint = apiEndpoint(cfg)
	}
	sign, err := replaySigner(cfg, target)
	if err != nil {
		return exitCode(err, stderr)
	}
	r.sign = sign
	d, ok := openDeadLetters(ctx, cfg, r.source, stderr)
	if !ok {
		return 1
	}
	defer d.Close(ctx)
	r.dl = d
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return exitCode(fmt.Errorf("data dir %q: %w", cfg.DataDir, err), stderr)
	}
	r.statePath = dlqStatePath(dataDir, r.source)
	unlock, err := lockReplay(strings.TrimSuffix(r.statePath, ".json") + ".lock")
	if err != nil {
		return exitCode(err, stderr)
	}
	defer unlock()
	if r.st, err = readReplayState(r.statePath); err != nil {
		return exitCode(err, stderr)
	}
	r.st.Stream = r.source
	if *abandon {
		return r.abandon(stdout, stderr)
	}
	if run := r.st.Run; run != nil {
		switch {
		case *to != "" && *to != run.To:
			return exitCode(fmt.Errorf("run %s (into %s) is unfinished: finish it first (sluice dlq replay --stream %s, without --to or with --to %s)", run.ID, run.To, r.source, run.To), stderr)
		case *typ != "" && *typ != run.Type:
			return exitCode(fmt.Errorf("run %s (type %s) is unfinished: finish it first (without --type, or with --type %s)", run.ID, orAll(run.Type), orAll(run.Type)), stderr)
		}
		fmt.Fprintf(stdout, "resuming replay run %s of %s into %s at record %d of %d\n", run.ID, r.source, run.To, run.Acked, run.Records)
	} else {
		run, err := r.plan(ctx, target, *typ)
		if err != nil {
			return exitCode(err, stderr)
		}
		if run == nil {
			fmt.Fprintf(stdout, "nothing to replay: no dead letters of %s (type %s) under %s that were not replayed already\n", r.source, orAll(*typ), d.Where())
			r.summary(nil, 0)
			return 0
		}
		r.st.Run = run
		if err := r.st.write(r.statePath); err != nil {
			return exitCode(err, stderr)
		}
		fmt.Fprintf(stdout, "replay run %s: %d records in %d objects of %s into %s through %s\n", run.ID, run.Records, len(run.Objects), r.source, run.To, r.endpoint)
	}
	run := r.st.Run
	r.progress = newReplayProgress(stdout, isTerminal(stdout), *every, run.Records, run.Acked)
	doneBefore := run.completedObjects()
	err = r.replay(ctx)
	r.progress.finish(run.Acked)
	completed := run.completedObjects() - doneBefore
	if err != nil {
		r.summary(run, completed)
		how := "stopped"
		if errors.Is(err, context.Canceled) {
			how = "interrupted"
		}
		fmt.Fprintf(stderr, "sluice dlq replay: %s: %v\n", how, err)
		fmt.Fprintf(stderr, "sluice dlq replay: %d of run %s's %d records are not replayed; run the same command again to resume it at record %d\n",
			run.Records-run.Acked, run.ID, run.Records, run.Acked)
		return 1
	}
	now := time.Now().UTC()
	for _, o := range run.Objects {
		r.st.Replayed = append(r.st.Replayed, replayedObject{Key: o.Key, Records: o.Records, Run: run.ID, To: run.To, At: now})
	}
	r.st.Run = nil
	if err := r.st.write(r.statePath); err != nil {
		return exitCode(fmt.Errorf("run %s is replayed, but marking its objects replayed failed (a run again resends nothing new): %w", run.ID, err), stderr)
	}
	fmt.Fprintf(stdout, "replay run %s of %s into %s: done\n", run.ID, r.source, run.To)
	r.summary(run, completed)
	return 0
}

// abandon drops the unfinished run: the objects whose records were all
// acknowledged join the replayed ones, the others are left for a new run.
func (r *replayer) abandon(stdout, stderr io.Writer) int {
	run := r.st.Run
	if run == nil {
		fmt.Fprintf(stderr, "sluice dlq replay: stream %s has no unfinished run to abandon\n", r.source)
		return 1
	}
	done := run.completedObjects()
	now := time.Now().UTC()
	partial := run.Acked
	for _, o := range run.Objects[:done] {
		r.st.Replayed = append(r.st.Replayed, replayedObject{Key: o.Key, Records: o.Records, Run: run.ID, To: run.To, At: now})
		partial -= o.Records
	}
	r.st.Run = nil
	if err := r.st.write(r.statePath); err != nil {
		return exitCode(err, stderr)
	}
	fmt.Fprintf(stdout, "abandoned replay run %s at record %d of %d: %d objects marked replayed, %d left for a new run\n", run.ID, run.Acked, run.Records, done, len(run.Objects)-done)
	if done < len(run.Objects) {
		fmt.Fprintf(stdout, "warning: the next run puts again the %d acknowledged records of %s, and any record the daemon stored whose answer was lost\n", partial, run.Objects[done].Key)
	}
	return 0
}

func orAll(t string) string {
	if t == "" {
		return "any"
	}
	return t
}

// apiEndpoint is the URL of the daemon's Firehose API from its listen
// address (a wildcard host is reached on loopback).
func apiEndpoint(cfg *config.Config) string {
	scheme := "http"
	if cfg.TLS.CertFile != "" {
		scheme = "https"
	}
	host, port, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return scheme + "://" + cfg.Listen
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::", "[::]":
		host = "::1"
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// replaySigner signs with SigV4 when the daemon requires it: with the key
// in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN)
// when set, else the first key of the configuration allowed to
// PutRecordBatch into target. The region is auth.region, else AWS_REGION,
// else us-east-1.
func replaySigner(cfg *config.Config, target string) (*loadSigner, error) {
	if !cfg.Auth.Required() {
		return nil, nil
	}
	region := cfg.Auth.Region
	if region == "" {
		region = os.Getenv("AWS_REGION")
	}
	if region == "" {
		region = "us-east-1"
	}
	s := &loadSigner{region: region, signer: v4.NewSigner()}
	if id, secret := os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY"); id != "" && secret != "" {
		s.creds = aws.Credentials{AccessKeyID: id, SecretAccessKey: secret, SessionToken: os.Getenv("AWS_SESSION_TOKEN")}
		return s, nil
	}
	for _, k := range cfg.Auth.Keys {
		if !k.Allows("firehose:PutRecordBatch", target) {
			continue
		}
		secret := k.SecretAccessKey
		if k.SecretAccessKeyFile != "" {
			b, err := os.ReadFile(k.SecretAccessKeyFile)
			if err != nil {
				return nil, fmt.Errorf("auth key %s: %w", k.AccessKeyID, err)
			}
			secret = strings.TrimSpace(string(b))
		}
		s.creds = aws.Credentials{AccessKeyID: k.AccessKeyID, SecretAccessKey: secret, SessionToken: k.SessionToken}
		return s, nil
	}
	return nil, fmt.Errorf("the daemon requires SigV4 and no key of %s may PutRecordBatch into %s: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", cfg.File, target)
}

// replayer runs one replay of a source stream's dead letters.
type replayer struct {
	source    string
	dl        *assemble.DeadLetters
	endpoint  string
	sign      *loadSigner
	client    *http.Client
	batch     int
	rate      int
	retryFor  time.Duration
	statePath string
	st        *replayState
	progress  *replayProgress
	out       io.Writer
	errOut    io.Writer
	log       *slog.Logger

	// This invocation's counts.
	stored, skipped int
	started         time.Time
	sent            int // records sent, for --rate
}

// plan fixes a new run: every dead-letter object of the source of type
// typ (any when empty) not replayed yet, in key order, with its records
// counted. nil when there is none.
func (r *replayer) plan(ctx context.Context, target, typ string) (*replayRun, error) {
	objs, err := r.dl.Candidates(ctx)
	if err != nil {
		return nil, err
	}
	done := r.st.replayedKeys()
	run := &replayRun{ID: newRunID(), To: target, Type: typ, Started: time.Now().UTC()}
	for _, o := range objs {
		if done[o.Key] || typ != "" && o.OutputType != typ {
			continue
		}
		n := 0
		err := r.dl.Each(ctx, o.Key, func(assemble.DeadLetterRecord) error { n++; return nil })
		if errors.Is(err, assemble.ErrNotDeadLetters) || errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		run.Objects = append(run.Objects, runObject{Key: o.Key, Type: o.OutputType, Records: n})
		run.Records += n
	}
	if len(run.Objects) == 0 {
		return nil, nil
	}
	return run, nil
}

// completedObjects counts the run's objects whose records are all
// acknowledged.
func (run *replayRun) completedObjects() int {
	n, end := 0, 0
	for _, o := range run.Objects {
		end += o.Records
		if end > run.Acked {
			break
		}
		n++
	}
	return n
}

func (r *replayer) summary(run *replayRun, completed int) {
	fmt.Fprintf(r.out, "records replayed (stored): %d\n", r.stored)
	fmt.Fprintf(r.out, "skipped as already stored: %d\n", r.skipped)
	fmt.Fprintf(r.out, "objects completed: %d\n", completed)
	failed := 0
	if run != nil {
		failed = run.Records - run.Acked
	}
	fmt.Fprintf(r.out, "failures: %d\n", failed)
}

// pendingRecord is a record of the run waiting to be sent.
type pendingRecord struct {
	seq  int
	data []byte
}

// replay sends the run's records from the first one not acknowledged, in
// order, recording each acknowledged batch in the state file.
func (r *replayer) replay(ctx context.Context) error {
	run := r.st.Run
	r.started = time.Now()
	var pending []pendingRecord
	pendingBytes := 0
	flush := func() error {
		err := r.send(ctx, pending)
		pending, pendingBytes = pending[:0], 0
		return err
	}
	seq := 0
	for _, o := range run.Objects {
		end := seq + o.Records
		if end <= run.Acked {
			seq = end
			continue
		}
		n := 0
		err := r.dl.Each(ctx, o.Key, func(rec assemble.DeadLetterRecord) error {
			s := seq + n
			n++
			if n > o.Records {
				return fmt.Errorf("dead-letter object %s holds more than the %d records it held when run %s started", o.Key, o.Records, run.ID)
			}
			if s < run.Acked {
				return nil
			}
			if len(rec.Data) > replayMaxRecordBytes {
				return fmt.Errorf("record %d of run %s (%s line %d) is %d bytes, over the %d bytes a put record may hold", s, run.ID, o.Key, rec.Line, len(rec.Data), replayMaxRecordBytes)
			}
			if len(pending) == r.batch || pendingBytes+len(rec.Data) > replayMaxBatchBytes {
				if err := flush(); err != nil {
					return err
				}
			}
			pending = append(pending, pendingRecord{seq: s, data: rec.Data})
			pendingBytes += len(rec.Data)
			return nil
		})
		switch {
		case errors.Is(err, fs.ErrNotExist), errors.Is(err, assemble.ErrNotDeadLetters):
			return fmt.Errorf("dead-letter object %s of run %s is gone or changed (%w): the run cannot resume", o.Key, run.ID, err)
		case err != nil:
			return err
		case n != o.Records:
			return fmt.Errorf("dead-letter object %s holds %d records, %d when run %s started: the run cannot resume", o.Key, n, o.Records, run.ID)
		}
		seq = end
	}
	if len(pending) > 0 {
		return flush()
	}
	return nil
}

// send puts recs (consecutive numbers from the run's acknowledged count)
// until every one is acknowledged, resending from the first refused one
// with backoff; it gives up after retryFor without progress.
func (r *replayer) send(ctx context.Context, recs []pendingRecord) error {
	run := r.st.Run
	backoff := 100 * time.Millisecond
	lastProgress := time.Now()
	for len(recs) > 0 {
		if recs[0].seq != run.Acked {
			return fmt.Errorf("internal error: sending record %d of run %s with %d acknowledged", recs[0].seq, run.ID, run.Acked)
		}
		if err := r.pace(ctx, len(recs)); err != nil {
			return err
		}
		ans, err := r.put(ctx, run, recs)
		if err != nil {
			return err
		}
		if ans.ok > 0 {
			run.Acked += ans.ok
			run.Stored += ans.stored
			run.Skipped += ans.skipped
			r.stored += ans.stored
			r.skipped += ans.skipped
			if err := r.st.write(r.statePath); err != nil {
				return err
			}
			recs = recs[ans.ok:]
			lastProgress, backoff = time.Now(), 100*time.Millisecond
			r.progress.update(run.Acked)
		}
		if len(recs) == 0 {
			return nil
		}
		if time.Since(lastProgress) > r.retryFor {
			return fmt.Errorf("record %d of run %s: no progress for %v: %s", recs[0].seq, run.ID, r.retryFor, ans.refusal)
		}
		if ans.ok == 0 {
			r.log.Warn("replay: retrying", "from_record", recs[0].seq, "reason", ans.refusal, "in", backoff)
		}
		if err := pipeline.Sleep(ctx, backoff); err != nil {
			return err
		}
		backoff = min(2*backoff, 5*time.Second)
	}
	return nil
}

// pace waits so that at most rate records a second are sent.
func (r *replayer) pace(ctx context.Context, n int) error {
	if r.rate <= 0 {
		return nil
	}
	at := r.started.Add(time.Duration(float64(r.sent) / float64(r.rate) * float64(time.Second)))
	r.sent += n
	if wait := time.Until(at); wait > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
	return nil
}

// putAnswer is what one PutRecordBatch of a replay achieved: the first ok
// records are acknowledged (stored of them stored, skipped already
// stored); refusal says why the rest were not.
type putAnswer struct {
	ok, stored, skipped int
	refusal             string
}

// put sends one PutRecordBatch of recs. Transport errors, 5xx, 429 and
// refused records come back as a refusal to retry; an answer that breaks
// the replay contract, or a request refused for good (4xx: a missing
// stream, access denied), is an error.
func (r *replayer) put(ctx context.Context, run *replayRun, recs []pendingRecord) (putAnswer, error) {
	type entry struct {
		Data string `json:"Data"`
	}
	req := struct {
		DeliveryStreamName string  `json:"DeliveryStreamName"`
		Records            []entry `json:"Records"`
	}{DeliveryStreamName: run.To, Records: make([]entry, len(recs))}
	for i, rec := range recs {
		req.Records[i].Data = base64.StdEncoding.EncodeToString(rec.data)
	}
	body, err := json.Marshal(req)
	if err != nil {
		return putAnswer{}, err
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, r.endpoint, bytes.NewReader(body))
	if err != nil {
		return putAnswer{}, err
	}
	hr.Header.Set("Content-Type", "application/x-amz-json-1.1")
	hr.Header.Set("X-Amz-Target", "Firehose_20150804.PutRecordBatch")
	hr.Header.Set(replayIDHeader, run.ID)
	hr.Header.Set(replaySeqHeader, strconv.Itoa(recs[0].seq))
	if r.sign != nil {
		if err := r.sign.sign(ctx, hr, payloadHash(body)); err != nil {
			return putAnswer{}, fmt.Errorf("signing: %w", err)
		}
	}
	resp, err := r.client.Do(hr)
	if err != nil {
		if ctx.Err() != nil {
			return putAnswer{}, ctx.Err()
		}
		return putAnswer{refusal: err.Error()}, nil
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		if ctx.Err() != nil {
			return putAnswer{}, ctx.Err()
		}
		return putAnswer{refusal: "reading the answer: " + err.Error()}, nil
	}
	excerpt := sanitize(string(bytes.TrimSpace(out)), 300)
	switch {
	case resp.StatusCode >= 500, resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode == http.StatusRequestTimeout:
		return putAnswer{refusal: fmt.Sprintf("HTTP %d: %s", resp.StatusCode, excerpt)}, nil
	case resp.StatusCode != http.StatusOK:
		return putAnswer{}, fmt.Errorf("PutRecordBatch into %s at %s: HTTP %d: %s", run.To, r.endpoint, resp.StatusCode, excerpt)
	}
	var res struct {
		RequestResponses []struct{ RecordId, ErrorCode, ErrorMessage string }
	}
	if err := json.Unmarshal(out, &res); err != nil || len(res.RequestResponses) != len(recs) {
		return putAnswer{}, fmt.Errorf("PutRecordBatch into %s at %s: unexpected answer (%d entries for %d records): %s", run.To, r.endpoint, len(res.RequestResponses), len(recs), excerpt)
	}
	var ans putAnswer
	failed := -1
	for i, e := range res.RequestResponses {
		switch {
		case e.ErrorCode != "":
			if failed < 0 {
				failed = i
				ans.refusal = sanitize(e.ErrorCode+": "+e.ErrorMessage, 300)
			}
		case failed >= 0:
			// The daemon stores a prefix of a request: a success after a
			// failure would be skipped when the failure is resent.
			return putAnswer{}, fmt.Errorf("PutRecordBatch into %s at %s: record %d refused but record %d acknowledged: the daemon does not keep the replay contract", run.To, r.endpoint, recs[failed].seq, recs[i].seq)
		case e.RecordId == "":
			ans.skipped++
		default:
			ans.stored++
		}
	}
	ans.ok = ans.stored + ans.skipped
	if ans.ok > 0 && resp.Header.Get(replaySkippedHeader) == "" {
		return putAnswer{}, fmt.Errorf("PutRecordBatch into %s at %s: the answer has no %s header: this daemon does not deduplicate replays (upgrade it); nothing more is sent", run.To, r.endpoint, replaySkippedHeader)
	}
	return ans, nil
}
