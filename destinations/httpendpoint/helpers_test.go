package httpendpoint

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/deploy/testpeers/receiver"
	"github.com/sluice-dev/sluice/destinations/destinationtest"
	"github.com/sluice-dev/sluice/pipeline"
)

const (
	testRegion  = "eu-west-3"
	testAccount = "123456789012"
)

var t0 = time.Date(2024, 2, 29, 23, 59, 58, 0, time.UTC)

func startReceiver(t testing.TB, cfg receiver.Config) *receiver.Receiver {
	t.Helper()
	r, err := receiver.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// newDest compiles opts (which must be valid) and builds the destination
// of stream, closed at the end of the test; log receives its debug logs
// (slog's handlers serialise their writes; read log once deliveries are
// over).
func newDest(t testing.TB, opts Options, stream string, log *bytes.Buffer) *Destination {
	t.Helper()
	cfg, err := Compile(opts)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	deps := pipeline.Deps{Region: testRegion, AccountID: testAccount}
	if log != nil {
		deps.Logger = slog.New(slog.NewJSONHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	d, err := New(context.Background(), cfg, stream, deps)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = d.Close(context.Background()) })
	return d
}

// opts returns valid options for the receiver r.
func opts(r *receiver.Receiver) Options {
	o := DefaultOptions()
	o.URL = r.URL()
	return o
}

func batch(stream string, first pipeline.Position, datas ...string) pipeline.Batch {
	bs := make([][]byte, len(datas))
	for i, d := range datas {
		bs[i] = []byte(d)
	}
	return destinationtest.NewBatch(stream, first, t0, bs...)
}

func deliver(t testing.TB, d *Destination, b pipeline.Batch) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return d.Deliver(ctx, b)
}

// optionKeys returns the keys of the *pipeline.OptionErrors in err's join
// tree, failing on any other leaf error.
func optionKeys(t *testing.T, err error) []string {
	t.Helper()
	var keys []string
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, sub := range j.Unwrap() {
				walk(sub)
			}
			return
		}
		var oe *pipeline.OptionError
		if !errors.As(e, &oe) {
			t.Errorf("error %q is not a *pipeline.OptionError", e)
			return
		}
		keys = append(keys, oe.Key)
	}
	if err != nil {
		walk(err)
	}
	return keys
}

// wantCoded checks that err is a CodedError of code and OutputType,
// retryable or not, whose message contains each of msgs.
func wantCoded(t *testing.T, err error, code string, retry bool, msgs ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("Deliver succeeded, want %s", code)
	}
	var c pipeline.Coder
	if !errors.As(err, &c) || c.ErrorCode() != code {
		t.Fatalf("error %v: code %v, want %s", err, c, code)
	}
	var ot pipeline.OutputTyper
	if !errors.As(err, &ot) || ot.ErrorOutputType() != OutputType {
		t.Fatalf("error %v: no output type %s", err, OutputType)
	}
	if got := pipeline.IsRetryable(err); got != retry {
		t.Fatalf("error %v: retryable %v, want %v", err, got, retry)
	}
	for _, m := range msgs {
		if !strings.Contains(err.Error(), m) {
			t.Fatalf("error %q does not contain %q", err, m)
		}
	}
}
