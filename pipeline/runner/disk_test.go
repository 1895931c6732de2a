package runner

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/buffer/disk"
	"github.com/sluice-dev/sluice/destinations/object"
	"github.com/sluice-dev/sluice/pipeline"
)

func openDisk(t testing.TB, dir string) *disk.Log {
	t.Helper()
	l, err := disk.Open(disk.Options{Dir: dir, Stream: "s"})
	if err != nil {
		t.Fatalf("disk.Open: %v", err)
	}
	return l
}

// A hard stop during delivery with the durable buffer: after closing and
// reopening the log, a new runner rebuilds exactly the in-flight batch and
// overwrites its object instead of duplicating it.
func TestDiskRestartRedeliversInflightBatch(t *testing.T) {
	e := newEnv(t)
	dir := filepath.Join(t.TempDir(), "buffer")
	log1 := openDisk(t, dir)
	e.buf = log1

	written := make(chan struct{})
	first := &scripted{next: e.file, steps: []func(context.Context, pipeline.Batch) error{
		func(ctx context.Context, b pipeline.Batch) error {
			if err := e.file.Deliver(ctx, b); err != nil {
				return err
			}
			close(written)
			<-ctx.Done()
			return ctx.Err()
		},
	}}
	o := e.opts()
	o.Buffer, o.Destination, o.Interval = log1, first, 0
	rn := e.start(o)
	e.append([]byte("alpha"), []byte("beta"))
	<-written
	e.append([]byte("gamma"))
	rn.cancel()
	if err := rn.wait(t, 5*time.Second); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v", err)
	}
	inflight := log1.State().Inflight
	if err := log1.Close(); err != nil {
		t.Fatal(err)
	}
	before := e.objects()

	log2 := openDisk(t, dir)
	defer log2.Close()
	e.buf = log2
	if st := log2.State(); !slices.Equal(st.Inflight, inflight) || st.Committed != 0 {
		t.Fatalf("reopened state %+v, want in flight %v", st, inflight)
	}
	second := &scripted{next: e.file}
	o.Buffer, o.Destination = log2, second
	rn2 := e.start(o)
	rn2.r.Drain()
	if err := rn2.wait(t, 5*time.Second); err != nil {
		t.Fatalf("second Run = %v", err)
	}
	calls := second.batches()
	if len(inflight) != 1 || len(calls) != 2 || calls[0].ID != inflight[0] {
		t.Fatalf("second run: %d calls, first %v; want the in-flight batch %v first", len(calls), calls[0].ID, inflight)
	}
	after := e.objects()
	if len(after) != 2 {
		t.Fatalf("%d objects, want 2: %v", len(after), slices.Collect(maps.Keys(after)))
	}
	for k, v := range before {
		if !bytes.Equal(after[k], v) || string(v) != "alphabeta" {
			t.Errorf("object %s = %q after restart, want %q", k, after[k], "alphabeta")
		}
	}
	if st := log2.State(); st.Committed != st.Head || len(st.Inflight) != 0 {
		t.Errorf("state after drain %+v", st)
	}
}

// Many producers, the durable buffer, the file destination: every record
// is delivered exactly once.
func TestDiskEndToEnd(t *testing.T) {
	e := newEnv(t, func(o *object.Options) { o.AppendNewline = true })
	l := openDisk(t, filepath.Join(t.TempDir(), "buffer"))
	defer l.Close()
	e.buf = l
	o := e.opts()
	o.Buffer = l
	o.SizeBytes = 64 << 10
	o.Interval = 20 * time.Millisecond
	rn := e.start(o)
	const producers, perProducer = 4, 300
	errc := make(chan error, producers)
	for p := range producers {
		go func() {
			for i := range perProducer {
				rec := []pipeline.Record{{Data: fmt.Appendf(nil, "p%d-%04d %s", p, i, bytes.Repeat([]byte("x"), i))}}
				if err := l.Append(context.Background(), rec); err != nil {
					errc <- err
					return
				}
			}
			errc <- nil
		}()
	}
	for range producers {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	rn.r.Drain()
	if err := rn.wait(t, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, v := range e.objects() {
		if len(v) > o.SizeBytes+perProducer*2 {
			t.Errorf("object of %d bytes, above the hint", len(v))
		}
		for line := range bytes.Lines(v) {
			seen[string(bytes.Fields(line)[0])]++
		}
	}
	for p := range producers {
		for i := range perProducer {
			if k := fmt.Sprintf("p%d-%04d", p, i); seen[k] != 1 {
				t.Fatalf("record %s delivered %d times", k, seen[k])
			}
		}
	}
	if len(seen) != producers*perProducer {
		t.Errorf("%d distinct records, want %d", len(seen), producers*perProducer)
	}
}
