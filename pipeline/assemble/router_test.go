package assemble

import (
	"context"
	"strconv"
	"testing"

	"github.com/sluice-dev/sluice/buffer"
	"github.com/sluice-dev/sluice/buffer/disk"
	"github.com/sluice-dev/sluice/buffer/memory"
	"github.com/sluice-dev/sluice/pipeline"
)

// replayRecs are records first..first+n-1 of replay run id.
func replayRecs(id string, first, n int) []pipeline.Record {
	recs := make([]pipeline.Record, n)
	for i := range recs {
		seq := strconv.Itoa(first + i)
		recs[i] = pipeline.Record{Data: []byte("r" + seq),
			Meta: map[string]string{pipeline.MetaReplayID: id, pipeline.MetaReplaySeq: seq}}
	}
	return recs
}

// stored reads every record of b.
func stored(t *testing.T, b buffer.Buffer) []string {
	t.Helper()
	st := b.State()
	recs, _, err := b.Read(context.Background(), st.Committed, 0, 0, st.Head)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range recs {
		out = append(out, string(r.Data))
	}
	return out
}

// TestReplayStoredOnce: a replay run's records are stored once however
// often they are resent: a resend's prefix already stored is skipped
// (IDs left empty), the rest stored; on a disk buffer this holds after
// the buffer is reopened (the numbers are in its records), and runs are
// independent.
func TestReplayStoredOnce(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	open := func() *disk.Log {
		t.Helper()
		l, err := disk.Open(disk.Options{Dir: dir, Stream: "s", Durability: buffer.DurabilityFsync,
			Track: disk.Track{Key: pipeline.MetaReplayID, Value: pipeline.MetaReplaySeq}})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	l := open()
	mem := memory.New(memory.Options{})
	defer mem.Close()
	for _, tc := range []struct {
		name   string
		buf    buffer.Buffer
		reopen bool
	}{{"disk", l, true}, {"memory", mem, false}} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRouter()
			r.add("s", tc.buf)
			if err := r.Append(ctx, "s", replayRecs("run1", 0, 10)); err != nil {
				t.Fatal(err)
			}
			again := replayRecs("run1", 5, 10)
			if err := r.Append(ctx, "s", again); err != nil {
				t.Fatal(err)
			}
			for i, rec := range again {
				if (rec.ID == "") != (i < 5) {
					t.Fatalf("record %d of the resend: ID %q", 5+i, rec.ID)
				}
			}
			if tc.reopen {
				if err := tc.buf.Close(); err != nil {
					t.Fatal(err)
				}
				tc.buf = open()
				defer tc.buf.Close()
				r = newRouter()
				r.add("s", tc.buf)
			}
			if err := r.Append(ctx, "s", replayRecs("run1", 0, 15)); err != nil {
				t.Fatal(err)
			}
			if err := r.Append(ctx, "s", replayRecs("run2", 0, 2)); err != nil {
				t.Fatal(err)
			}
			if err := r.Append(ctx, "s", []pipeline.Record{{Data: []byte("plain")}, {Data: []byte("plain")}}); err != nil {
				t.Fatal(err)
			}
			got := stored(t, tc.buf)
			want := []string{"r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r0", "r1", "plain", "plain"}
			if len(got) != len(want) {
				t.Fatalf("stored %q, want %q", got, want)
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("stored %q, want %q", got, want)
				}
			}
		})
	}
}
