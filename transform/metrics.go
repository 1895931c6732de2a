package transform

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-dev/sluice/pipeline"
)

// RecordCounters returns a processor's counters of records in and out, by
// stream: sluice_<family>_records_in_total ("Records given to the <typ>
// processor.") and sluice_<family>_records_out_total (outHelp), registered
// on reg (nil: not registered). Called again with the same registerer, it
// returns the collectors registered first, so every stream's processor of
// one type shares them.
func RecordCounters(reg prometheus.Registerer, family, typ, outHelp string) (in, out *prometheus.CounterVec, err error) {
	in = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_" + family + "_records_in_total",
		Help: "Records given to the " + typ + " processor.",
	}, []string{"stream"})
	out = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_" + family + "_records_out_total",
		Help: outHelp,
	}, []string{"stream"})
	if err := pipeline.RegisterAll(reg, &in, &out); err != nil {
		return nil, nil, fmt.Errorf("%s metrics: %w", typ, err)
	}
	return in, out, nil
}
