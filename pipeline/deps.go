package pipeline

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
)

// Deps are the dependencies injected into every component's constructor.
// There are no globals: each component gets its logger, its metrics
// registerer and the data directory from here.
type Deps struct {
	Logger   *slog.Logger
	Registry prometheus.Registerer
	// DataDir is the root directory for buffers and local outputs.
	DataDir string
}
