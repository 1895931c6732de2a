package pipeline

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-dev/sluice/pipeline/seal"
)

// Deps are the dependencies injected into every component's constructor.
// There are no globals: each component gets its logger, its metrics
// registerer and the data directory from here.
type Deps struct {
	Logger   *slog.Logger
	Registry prometheus.Registerer
	// DataDir is the root directory for buffers and local outputs.
	DataDir string
	// Region and AccountID are the deployment's identity (the
	// configuration's region and account_id), used where a component shows
	// ARNs.
	Region    string
	AccountID string
	// Keys is the stream's keyring for encryption at rest, nil when none
	// is configured: what a component writes to local disks (a file
	// store's objects) is sealed under it when it seals (Keys.Sealing),
	// and what it reads back is opened with it.
	Keys *seal.Keyring
}

// Register registers c on reg and returns it, or returns the collector of
// the same description registered before (so that every instance of a
// component in a process shares one metric family). A nil reg registers
// nothing. A conflicting collector of another type is an error.
func Register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if reg == nil {
		return c, nil
	}
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if !errors.As(err, &are) {
		return c, fmt.Errorf("register metrics: %w", err)
	}
	existing, ok := are.ExistingCollector.(C)
	if !ok {
		return c, fmt.Errorf("register metrics: %w (the existing collector is a %T)", err, are.ExistingCollector)
	}
	return existing, nil
}

// RegisterAll is Register for several collectors of one type: each *c is
// registered, or replaced by the collector registered before it.
func RegisterAll[C prometheus.Collector](reg prometheus.Registerer, cs ...*C) error {
	for _, c := range cs {
		existing, err := Register(reg, *c)
		if err != nil {
			return err
		}
		*c = existing
	}
	return nil
}
