package deaggregate

import (
	"crypto/md5"
	"strconv"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/sluice-dev/sluice/pipeline"
)

// pbw is a minimal protobuf writer for building test messages,
// independent of the decoder under test.
type pbw struct{ b []byte }

func (w *pbw) varint(v uint64) *pbw {
	for v >= 0x80 {
		w.b = append(w.b, byte(v)|0x80)
		v >>= 7
	}
	w.b = append(w.b, byte(v))
	return w
}

func (w *pbw) tag(num, wt int) *pbw { return w.varint(uint64(num)<<3 | uint64(wt)) }

func (w *pbw) uint(num int, v uint64) *pbw { return w.tag(num, 0).varint(v) }

func (w *pbw) bytes(num int, b []byte) *pbw {
	w.tag(num, 2).varint(uint64(len(b)))
	w.b = append(w.b, b...)
	return w
}

// userRecord is a Record message to encode; ehk < 0 means no
// explicit_hash_key_index.
type userRecord struct {
	pk, ehk int
	data    string
	tags    map[string]string
}

func (u userRecord) encode() []byte {
	w := &pbw{}
	w.uint(1, uint64(u.pk))
	if u.ehk >= 0 {
		w.uint(2, uint64(u.ehk))
	}
	w.bytes(3, []byte(u.data))
	for k, v := range u.tags {
		t := (&pbw{}).bytes(1, []byte(k)).bytes(2, []byte(v))
		w.bytes(4, t.b)
	}
	return w.b
}

// aggregatedMessage encodes an AggregatedRecord: tables first, then
// records, as the KPL writes it.
func aggregatedMessage(pks, ehks []string, recs []userRecord) []byte {
	w := &pbw{}
	for _, k := range pks {
		w.bytes(1, []byte(k))
	}
	for _, k := range ehks {
		w.bytes(2, []byte(k))
	}
	for _, r := range recs {
		w.bytes(3, r.encode())
	}
	return w.b
}

// frame wraps a protobuf message as a KPL aggregated record.
func frame(msg []byte) []byte {
	sum := md5.Sum(msg)
	out := append([]byte{0xF3, 0x89, 0x9A, 0xC2}, msg...)
	return append(out, sum[:]...)
}

func newProc(t testing.TB, opts Options) (*Processor, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	p, err := New(compile(t, opts), pipeline.Deps{Registry: reg})
	if err != nil {
		t.Fatalf("New(%+v): %v", opts, err)
	}
	return p, reg
}

func compile(t testing.TB, opts Options) Compiled {
	t.Helper()
	c, err := opts.Compile()
	if err != nil {
		t.Fatalf("Compile(%+v): %v", opts, err)
	}
	return c
}

func batchOf(data ...[]byte) pipeline.Batch {
	b := pipeline.Batch{Stream: "s"}
	for i, d := range data {
		b.Records = append(b.Records, pipeline.Record{ID: "r" + strconv.Itoa(i), Data: d})
		b.Bytes += len(d)
	}
	return b
}

// value reads a series of a counter vector (0 when absent).
func value(t *testing.T, cv *prometheus.CounterVec, labels ...string) float64 {
	t.Helper()
	var m dto.Metric
	if err := cv.WithLabelValues(labels...).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
