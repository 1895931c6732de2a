package destinationtest

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// Counter sums the counter series of family name in reg whose labels
// include labels (nil: every series), failing the test if reg cannot be
// gathered. Destinations' tests check their own metric families with it.
func Counter(t testing.TB, reg prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			ok := true
			for k, v := range labels {
				ok = ok && have[k] == v
			}
			if ok {
				total += m.GetCounter().GetValue()
			}
		}
	}
	return total
}
