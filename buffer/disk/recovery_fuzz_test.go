package disk_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"hash/crc32"
	"log/slog"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sluice-dev/sluice/buffer"
	"github.com/sluice-dev/sluice/buffer/disk"
	"github.com/sluice-dev/sluice/buffer/disk/vfs"
	"github.com/sluice-dev/sluice/pipeline"
)

// recoverRecs are appended (one Append each) before the damage: with and
// without metadata, tracked and not, empty and larger data.
var recoverRecs = []pipeline.Record{
	{Data: []byte("alpha")},
	{Data: []byte("bravo"), Meta: map[string]string{"shardId": "s1", "sequenceNumber": "100"}},
	{Data: []byte{}, Meta: map[string]string{"shardId": "s2", "sequenceNumber": "7"}},
	{Data: bytes.Repeat([]byte{'x'}, 100)},
	{Data: []byte("delta"), Meta: map[string]string{"shardId": "s1", "sequenceNumber": "101", "partitionKey": "k"}},
	{Data: []byte("echo"), Meta: map[string]string{"k": "v"}},
	{Data: []byte("{\"f\":1}\n"), Meta: map[string]string{"shardId": "s3"}},
}

// Choices of FuzzRecover's how byte.
const (
	segKeep      = 0 // bits 0-1: the active segment
	segOverwrite = 1
	segInsert    = 2
	segTruncate  = 3 // cut at the offset, then append the junk

	curShift  = 2 // bits 2-3: the cursor file
	posShift  = 4 // bits 4-5: the positions file
	fileKeep  = 0
	fileJunk  = 1 // replaced with the junk bytes
	fileValid = 2 // replaced with a well-formed file made of p1, p2, p3
	fileGone  = 3 // removed

	smallSegments = 0x40 // bit 6: segments of 160 bytes (a roll per record or two)
)

const (
	fuzzDir       = "/d/s"
	cursorPath    = fuzzDir + "/cursor"
	positionsPath = fuzzDir + "/positions"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// validCursor is a version 2 cursor file (see the package doc) with a
// fixed log id, committed position p1 and, when p2 != p3, one in-flight
// batch [p2, p3) (refused by the decoder when p2 > p3).
func validCursor(p1, p2, p3 uint32) []byte {
	b := append([]byte("SLCU"), 2, 0, 0, 0)
	b = append(b, "fuzzcurs"...)
	b = binary.LittleEndian.AppendUint64(b, uint64(p1))
	n := uint32(0)
	if p2 != p3 {
		n = 1
	}
	b = binary.LittleEndian.AppendUint32(b, n)
	b = binary.LittleEndian.AppendUint32(b, 0)
	if n == 1 {
		b = binary.LittleEndian.AppendUint64(b, uint64(p2))
		b = binary.LittleEndian.AppendUint64(b, uint64(p3))
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// validPositions is a positions file (see the package doc) covering p2,
// with s1 at p3 and s3 at "x".
func validPositions(p2, p3 uint32) []byte {
	b := append([]byte("SLPS"), 1, 0, 0, 0)
	b = binary.LittleEndian.AppendUint64(b, uint64(p2))
	b = binary.LittleEndian.AppendUint32(b, 2)
	for _, kv := range [][2]string{{"s1", strconv.FormatUint(uint64(p3), 10)}, {"s3", "x"}} {
		b = binary.AppendUvarint(b, uint64(len(kv[0])))
		b = append(b, kv[0]...)
		b = binary.AppendUvarint(b, uint64(len(kv[1])))
		b = append(b, kv[1]...)
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

func sameRecord(a, b pipeline.Record) bool {
	return bytes.Equal(a.Data, b.Data) && maps.Equal(a.Meta, b.Meta) && a.Arrived.Equal(b.Arrived)
}

type readRec struct {
	pos pipeline.Position
	rec pipeline.Record
}

// readAll reads one record at a time from the committed position to the
// head; Read must make progress on every call below the head.
func readAll(t *testing.T, l *disk.Log) []readRec {
	t.Helper()
	ctx := context.Background()
	st := l.State()
	var out []readRec
	from := st.Committed
	for calls := 0; from < st.Head; calls++ {
		if calls > 1000 {
			t.Fatalf("more than 1000 reads from %d to %d", st.Committed, st.Head)
		}
		recs, next, err := l.Read(ctx, from, 0, 1, 0)
		if err != nil {
			t.Fatalf("Read(%d) below head %d: %v", from, st.Head, err)
		}
		if next <= from || next > st.Head {
			t.Fatalf("Read(%d): next %d, head %d", from, next, st.Head)
		}
		if len(recs) > 1 {
			t.Fatalf("Read(%d) with maxRecords 1: %d records", from, len(recs))
		}
		for _, r := range recs {
			p := idPos(t, r.ID)
			if p < from || p >= next {
				t.Fatalf("Read(%d) = record at %d, next %d", from, p, next)
			}
			out = append(out, readRec{p, r})
		}
		from = next
	}
	return out
}

// checkState checks the cursors and the in-flight set of a recovered log.
func checkState(t *testing.T, st buffer.State) {
	t.Helper()
	if st.Committed > st.Head {
		t.Fatalf("committed %d after head %d", st.Committed, st.Head)
	}
	if len(st.Inflight) > buffer.MaxInflight {
		t.Fatalf("%d batches in flight", len(st.Inflight))
	}
	for i, id := range st.Inflight {
		if id.First >= id.End || id.First < st.Committed || id.End > st.Head || i > 0 && id.First < st.Inflight[i-1].End {
			t.Fatalf("in-flight set %v with committed %d, head %d", st.Inflight, st.Committed, st.Head)
		}
	}
}

// FuzzRecover builds a log on the in-memory filesystem, damages its active
// segment, cursor file or positions file with the fuzzer's bytes (how
// chooses what) and opens it again. Recovery never refuses to open because
// of the content of the files; afterwards every read from the committed
// position to the head succeeds and makes progress, a record read from the
// untouched part of the log is the one appended there, no record of the
// untouched part is lost when recovery starts from the oldest segment (the
// cursor kept, missing or corrupt), the tracked positions are those of the
// records left (when the positions file is rebuilt or covers only
// untouched records), a clean reopen gives the same state, and the log
// takes, returns, marks and commits a new record.
func FuzzRecover(f *testing.F) {
	zeros, ones := make([]byte, 64), bytes.Repeat([]byte{0xff}, 64)
	torn := []byte{0x20, 0, 0, 0, 1, 2, 3, 4, 5}
	for _, s := range []struct {
		how        uint8
		at         uint16
		junk       []byte
		p1, p2, p3 uint32
	}{
		{segKeep, 0, nil, 0, 0, 0},
		{segKeep | smallSegments, 0, nil, 0, 0, 0},
		{segOverwrite, 30, []byte{0xff}, 0, 0, 0},
		{segOverwrite, 0, zeros, 0, 0, 0},
		{segOverwrite | smallSegments, 5, ones, 0, 0, 0},
		{segInsert, 22, torn, 0, 0, 0},
		{segInsert | smallSegments, 0, []byte("garbage"), 0, 0, 0},
		{segTruncate, 100, torn, 0, 0, 0},
		{segTruncate, 1000, zeros, 0, 0, 0},
		{segTruncate | smallSegments, 3, nil, 0, 0, 0},
		{fileJunk << curShift, 0, []byte("SLCU\x02\x00\x00\x00"), 0, 0, 0},
		{fileGone << curShift, 0, nil, 0, 0, 0},
		{fileGone<<curShift | segTruncate, 50, nil, 0, 0, 0},
		{fileValid << curShift, 0, nil, 22, 0, 0},
		{fileValid << curShift, 0, nil, 0, 0, 22},
		{fileValid << curShift, 0, nil, 0, 22, 60},
		{fileValid << curShift, 0, nil, 10, 22, 60},
		{fileValid << curShift, 0, nil, 10, 500, 1000},
		{fileValid<<curShift | smallSegments, 0, nil, 170, 0, 0},
		{fileValid<<curShift | smallSegments, 0, nil, 5000, 0, 0},
		{fileValid<<curShift | segTruncate, 40, nil, 0, 30, 400},
		{fileJunk << posShift, 0, []byte("SLPS"), 0, 0, 0},
		{fileGone<<posShift | smallSegments, 0, nil, 0, 0, 0},
		{fileValid << posShift, 0, nil, 0, 0, 5},
		{fileValid<<posShift | smallSegments, 0, nil, 0, 170, 5},
		{fileValid<<posShift | smallSegments, 0, nil, 0, 1 << 30, 5},
		{fileJunk<<curShift | fileJunk<<posShift | segInsert, 0, []byte{1}, 0, 0, 0},
		{fileValid<<curShift | fileValid<<posShift | segOverwrite | smallSegments, 7, ones, 300, 100, 300},
	} {
		f.Add(s.how, s.at, s.junk, s.p1, s.p2, s.p3)
	}
	ctx := context.Background()
	arrived := time.Unix(1_700_000_000, 123_456_789)
	f.Fuzz(func(t *testing.T, how uint8, at uint16, junk []byte, p1, p2, p3 uint32) {
		fs := vfs.NewMem()
		reg := prometheus.NewRegistry()
		m, err := disk.NewMetrics(reg)
		if err != nil {
			t.Fatal(err)
		}
		seg := int64(1 << 20)
		if how&smallSegments != 0 {
			seg = 160
		}
		opts := disk.Options{
			Dir: fuzzDir, FS: fs, Stream: "fuzz", SegmentBytes: seg, Metrics: m,
			Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return arrived },
			Track: disk.Track{Key: "shardId", Value: "sequenceNumber"},
		}
		open := func() *disk.Log {
			t.Helper()
			l, err := disk.Open(opts)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			return l
		}

		// The log before the damage: the records, and two batches marked
		// in flight.
		l := open()
		appended := map[pipeline.Position]pipeline.Record{}
		var order []pipeline.Position
		for _, r := range recoverRecs {
			recs := []pipeline.Record{{Data: bytes.Clone(r.Data), Meta: maps.Clone(r.Meta)}}
			if err := l.Append(ctx, recs); err != nil {
				t.Fatalf("Append: %v", err)
			}
			p := idPos(t, recs[0].ID)
			recs[0].Arrived = arrived
			appended[p] = recs[0]
			order = append(order, p)
		}
		head := l.State().Head
		frameEnd := func(p pipeline.Position) pipeline.Position {
			i := slices.Index(order, p)
			if i+1 < len(order) {
				return order[i+1]
			}
			return head
		}
		for _, id := range []pipeline.BatchID{{First: 0, End: order[2]}, {First: order[2], End: order[4]}} {
			if err := l.MarkInflight(ctx, id); err != nil {
				t.Fatalf("MarkInflight(%v): %v", id, err)
			}
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}

		// The damage.
		files := fs.Files()
		var segs []string
		for name := range files {
			if strings.HasSuffix(name, ".seg") {
				segs = append(segs, name)
			}
		}
		slices.Sort(segs)
		active := segs[len(segs)-1]
		activeBase, err := strconv.ParseUint(strings.TrimSuffix(path.Base(active), ".seg"), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		// untouched: every byte of the log before it is as appended.
		untouched := head
		size := len(files[active])
		if act := how & 3; act != segKeep {
			off := int(at) % (size + 1)
			untouched = pipeline.Position(activeBase) + pipeline.Position(off)
			err := fs.Damage(active, func(b []byte) []byte {
				switch act {
				case segOverwrite:
					out := slices.Clone(b)
					if end := off + len(junk); end > len(out) {
						out = append(out, make([]byte, end-len(out))...)
					}
					copy(out[off:], junk)
					return out
				case segInsert:
					return slices.Concat(b[:off], junk, b[off:])
				default:
					return slices.Concat(b[:off], junk)
				}
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		// covered: the position the positions file covered before the damage.
		pf := files[positionsPath]
		if len(pf) < 16 {
			t.Fatalf("positions file of %d bytes", len(pf))
		}
		covered := pipeline.Position(binary.LittleEndian.Uint64(pf[8:16]))
		replace := func(name string, mode uint8, valid []byte) {
			var err error
			switch mode {
			case fileJunk:
				err = fs.Damage(name, func([]byte) []byte { return slices.Clone(junk) })
			case fileValid:
				err = fs.Damage(name, func([]byte) []byte { return valid })
			case fileGone:
				err = fs.Remove(name)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		curMode, posMode := how>>curShift&3, how>>posShift&3
		replace(cursorPath, curMode, validCursor(p1, p2, p3))
		replace(positionsPath, posMode, validPositions(p2, p3))

		// Recovery.
		l = open()
		st := l.State()
		checkState(t, st)
		// The cursor was kept, or found missing or corrupt: recovery then
		// starts from the oldest segment, and nothing was ever committed.
		fromStart := curMode == fileKeep || counterValue(t, reg, "sluice_buffer_cursor_recoveries_total") > 0
		if fromStart && st.Committed != 0 {
			t.Fatalf("committed %d, want 0", st.Committed)
		}
		got := readAll(t, l)
		read := map[pipeline.Position]bool{}
		for _, g := range got {
			read[g.pos] = true
			want, ok := appended[g.pos]
			switch {
			case !ok && g.pos < untouched:
				t.Fatalf("a record at %d, inside the untouched part (before %d), where none was appended", g.pos, untouched)
			case ok && frameEnd(g.pos) <= untouched && !sameRecord(g.rec, want):
				t.Fatalf("record at %d: read %q %v %v, appended %q %v %v", g.pos,
					g.rec.Data, g.rec.Meta, g.rec.Arrived, want.Data, want.Meta, want.Arrived)
			}
		}
		if fromStart {
			for _, p := range order {
				if frameEnd(p) <= untouched && !read[p] {
					t.Fatalf("record at %d (untouched before %d) lost; read %d records", p, untouched, len(got))
				}
			}
		}
		// The positions are those of the records left when the file was
		// rebuilt from them, or when it covered only untouched records.
		rebuilt := (posMode == fileJunk || posMode == fileGone) && counterValue(t, reg, "sluice_buffer_position_recoveries_total") > 0
		if fromStart && (rebuilt || posMode == fileKeep && covered <= untouched) {
			want := map[string]string{}
			for _, g := range got {
				if k, ok := g.rec.Meta["shardId"]; ok {
					want[k] = g.rec.Meta["sequenceNumber"]
				}
			}
			if p := l.Positions(); !maps.Equal(p, want) {
				t.Fatalf("positions %v, want %v (from the %d records left)", p, want, len(got))
			}
		}

		// A clean reopen finds the same log.
		st, positions := l.State(), l.Positions()
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		l = open()
		defer l.Close()
		if again := l.State(); again.Committed != st.Committed || again.Head != st.Head || !slices.Equal(again.Inflight, st.Inflight) {
			t.Fatalf("reopened: %+v, before %+v", again, st)
		}
		if p := l.Positions(); !maps.Equal(p, positions) {
			t.Fatalf("reopened: positions %v, before %v", p, positions)
		}
		again := readAll(t, l)
		if len(again) != len(got) {
			t.Fatalf("reopened: %d records, before %d", len(again), len(got))
		}
		for i := range again {
			if again[i].pos != got[i].pos || !sameRecord(again[i].rec, got[i].rec) || again[i].rec.ID != got[i].rec.ID {
				t.Fatalf("reopened: record %d differs", i)
			}
		}

		// The log goes on.
		st = l.State()
		recs := []pipeline.Record{{Data: []byte("after"), Meta: map[string]string{"shardId": "s9", "sequenceNumber": "900"}}}
		if err := l.Append(ctx, recs); err != nil {
			t.Fatalf("Append after recovery: %v", err)
		}
		p := idPos(t, recs[0].ID)
		if p != st.Head {
			t.Fatalf("appended at %d, head was %d", p, st.Head)
		}
		newHead := l.State().Head
		back, next, err := l.Read(ctx, p, 0, 0, 0)
		if err != nil || len(back) != 1 || next != newHead || back[0].ID != recs[0].ID || string(back[0].Data) != "after" || back[0].Meta["shardId"] != "s9" {
			t.Fatalf("reading the new record: %d records, next %d (head %d), %v", len(back), next, newHead, err)
		}
		if v := l.Positions()["s9"]; v != "900" {
			t.Fatalf("position of s9: %q", v)
		}
		first := st.Committed
		if n := len(st.Inflight); n > 0 {
			first = max(first, st.Inflight[n-1].End)
		}
		if err := l.MarkInflight(ctx, pipeline.BatchID{First: first, End: newHead}); err != nil {
			t.Fatalf("MarkInflight [%d, %d) after recovery (state %+v): %v", first, newHead, st, err)
		}
		if err := l.Commit(ctx, newHead); err != nil {
			t.Fatalf("Commit(%d) after recovery: %v", newHead, err)
		}
		if st := l.State(); st.Committed != newHead || len(st.Inflight) != 0 {
			t.Fatalf("after committing everything: %+v", st)
		}
	})
}
