package pipeline_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-dev/sluice/pipeline"
)

func TestRegisterReusesAndRejectsConflicts(t *testing.T) {
	reg := prometheus.NewRegistry()
	newVec := func() *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "x_total", Help: "x"}, []string{"stream"})
	}
	first, err := pipeline.Register(reg, newVec())
	if err != nil {
		t.Fatal(err)
	}
	second := newVec()
	if err := pipeline.RegisterAll(reg, &second); err != nil {
		t.Fatal(err)
	}
	if second != first {
		t.Fatal("a second registration did not reuse the first collector")
	}
	second.WithLabelValues("s").Inc()
	if got := testCount(t, reg); got != 1 {
		t.Fatalf("count through the reused collector = %v", got)
	}
	gauge := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "x_total", Help: "x"}, []string{"stream"})
	if _, err := pipeline.Register(reg, gauge); err == nil {
		t.Fatal("a conflicting collector of another type was accepted")
	}
	if c, err := pipeline.Register(nil, newVec()); err != nil || c == nil {
		t.Fatalf("nil registerer: %v", err)
	}
}

func testCount(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "x_total" {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatal("x_total not gathered")
	return 0
}
