package delimiter

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/sluice-dev/sluice/pipeline"
)

func newProc(t testing.TB, delim string) *Processor {
	t.Helper()
	p, err := New(compile(t, Options{Delimiter: delim}), pipeline.Deps{Registry: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func compile(t testing.TB, o Options) Compiled {
	t.Helper()
	c, err := o.Compile()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestAppend(t *testing.T) {
	// Three records sharing one backing array, as sub-records of an
	// aggregated record do: in-place appends would overwrite b and c.
	shared := []byte("aaabbbccc")
	in := pipeline.Batch{Stream: "s", Records: []pipeline.Record{
		{ID: "1", Data: shared[0:3], Keys: map[string]string{"k": "v"}},
		{ID: "2", Data: shared[3:6]},
		{ID: "3", Data: shared[6:9]},
		{ID: "4", Data: nil},
	}}
	for _, delim := range []string{"\n", "\r\n", "####"} {
		p := newProc(t, delim)
		out, failed, err := p.Process(context.Background(), in)
		if err != nil || len(failed) != 0 {
			t.Fatalf("err=%v failed=%v", err, failed)
		}
		want := []string{"aaa" + delim, "bbb" + delim, "ccc" + delim, delim}
		for i, w := range want {
			if string(out.Records[i].Data) != w || out.Records[i].ID != in.Records[i].ID {
				t.Errorf("%q: record %d = %q, want %q", delim, i, out.Records[i].Data, w)
			}
		}
		if string(shared) != "aaabbbccc" || len(in.Records[0].Data) != 3 {
			t.Errorf("%q: the input changed: %q", delim, shared)
		}
		if out.Records[0].Keys["k"] != "v" {
			t.Error("keys lost")
		}
		if out.Bytes != 9+4*len(delim) {
			t.Errorf("Bytes = %d", out.Bytes)
		}
		// Appending to one output record must not clobber the next.
		_ = append(out.Records[0].Data, 'X')
		if string(out.Records[1].Data) != "bbb"+delim {
			t.Errorf("%q: output records overlap", delim)
		}
	}
}

func TestDefaultsAndValidate(t *testing.T) {
	if DefaultOptions().Delimiter != "\n" || DefaultOptions().Validate() != nil {
		t.Error("bad defaults")
	}
	var oe *pipeline.OptionError
	if _, err := (Options{}).Compile(); !errors.As(err, &oe) || oe.Key != "delimiter" || !strings.HasPrefix(oe.Err.Error(), "empty") {
		t.Errorf("Compile: err = %v, want an OptionError at delimiter", err)
	}
	if _, err := New(Compiled{}, pipeline.Deps{}); err == nil || !strings.Contains(err.Error(), "not compiled") {
		t.Errorf("New(Compiled{}): err = %v", err)
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	p1, _ := New(compile(t, DefaultOptions()), pipeline.Deps{Registry: reg})
	p2, err := New(compile(t, DefaultOptions()), pipeline.Deps{Registry: reg})
	if err != nil || p1.metrics.in != p2.metrics.in {
		t.Fatalf("reuse: %v", err)
	}
	if _, _, err := p2.Process(context.Background(), pipeline.Batch{Stream: "s", Records: make([]pipeline.Record, 3)}); err != nil {
		t.Fatal(err)
	}
	var m dto.Metric
	if err := p1.metrics.out.WithLabelValues("s").Write(&m); err != nil || m.GetCounter().GetValue() != 3 {
		t.Errorf("out = %v, %v", m.GetCounter().GetValue(), err)
	}
	bad := prometheus.NewRegistry()
	bad.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_append_delimiter_records_in_total", Help: "x"}))
	if _, err := NewMetrics(bad); err == nil {
		t.Error("accepted a conflicting collector")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := p1.Process(ctx, pipeline.Batch{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

// perRecord is the alternative to the arena: one allocation per record.
func perRecord(b pipeline.Batch, delim []byte) pipeline.Batch {
	out := b
	out.Records = make([]pipeline.Record, len(b.Records))
	for i := range b.Records {
		d := make([]byte, 0, len(b.Records[i].Data)+len(delim))
		out.Records[i] = b.Records[i]
		out.Records[i].Data = append(append(d, b.Records[i].Data...), delim...)
	}
	return out
}

// BenchmarkProcess1KiB appends "\n" to 1,000 records of 1 KiB: the
// processor's arena against one allocation per record.
func BenchmarkProcess1KiB(b *testing.B) {
	const n = 1000
	batch := pipeline.Batch{Stream: "bench"}
	for range n {
		batch.Records = append(batch.Records, pipeline.Record{Data: bytes.Repeat([]byte("x"), 1024)})
	}
	p := newProc(b, "\n")
	b.Run("arena", func(b *testing.B) {
		b.SetBytes(n * 1024)
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := p.Process(context.Background(), batch); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
	})
	b.Run("per-record", func(b *testing.B) {
		b.SetBytes(n * 1024)
		b.ReportAllocs()
		for b.Loop() {
			perRecord(batch, []byte("\n"))
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
	})
}
