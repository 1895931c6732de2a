package assemble

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/config"
	"github.com/sluice-dev/sluice/pipeline"
)

// Every component goes through one lifecycle, each step once (Caddy's
// decode → validate → provision → cleanup):
//
//	check: decode the YAML block onto the defaults and validate it (pure;
//	       `sluice validate` stops here), keeping the checked value;
//	build: provision the component from the checked value (I/O: files,
//	       clients), never decoding or validating again;
//	close: release it, once, through Close(ctx); a failed build closes
//	       what was built before it.
//
// A kind is the generic form of those steps for one component type.

// checked is a component's decoded and validated options, ready to build.
type checked any

// destinationKind describes one destination type.
type destinationKind struct {
	options any // the zero options struct, for the documentation check
	// maxInFlight is the stream's max_in_flight when it sets none.
	maxInFlight int
	// errorOutput reports whether the destination is an object store
	// that is its own default error output (file, s3).
	errorOutput bool
	// backoffMax caps the backoff between delivery attempts (zero: the
	// runner's default).
	backoffMax time.Duration
	// retryDefault is the stream's retry duration in seconds when the
	// file sets none (zero: config.DefaultRetry).
	retryDefault int
	// retryMax is the longest retry duration in seconds the destination
	// accepts (zero: config's 86400).
	retryMax int
	check    func(c config.Component) (checked, config.Errors)
	build    func(ctx context.Context, v checked, stream string, deps pipeline.Deps) (pipeline.Destination, error)
}

// destination makes a destinationKind from a destination package's usual
// functions: defaults, a pure compile step that validates every option,
// and a build step from the compiled value.
func destination[O, C any, D pipeline.Destination](defaults func() O, compile func(O) (C, error),
	build func(context.Context, C, string, pipeline.Deps) (D, error), maxInFlight int, errorOutput bool) destinationKind {
	var zero O
	return destinationKind{
		options:     zero,
		maxInFlight: maxInFlight,
		errorOutput: errorOutput,
		check: func(c config.Component) (checked, config.Errors) {
			return decodeAndCompile(c, defaults, compile)
		},
		build: func(ctx context.Context, v checked, stream string, deps pipeline.Deps) (pipeline.Destination, error) {
			return build(ctx, v.(C), stream, deps)
		},
	}
}

// decodeAndCompile decodes c onto the defaults and compiles the options,
// reporting every problem at its key.
func decodeAndCompile[O, C any](c config.Component, defaults func() O, compile func(O) (C, error)) (checked, config.Errors) {
	opts := defaults()
	if err := c.Decode(&opts); err != nil {
		return nil, asErrors(c, err)
	}
	v, err := compile(opts)
	if err != nil {
		return nil, c.OptionErrors(err)
	}
	return v, nil
}

// asErrors returns err as configuration errors, positioned at c when it
// carries no position of its own.
func asErrors(c config.Component, err error) config.Errors {
	var ce config.Errors
	if errors.As(err, &ce) {
		return ce
	}
	var e config.Error
	if errors.As(err, &e) {
		return config.Errors{e}
	}
	return c.OptionErrors(err)
}

// processorKind describes one processor type. rank is the processor's
// place in Firehose's chain (package transform): a stream's processors
// must be listed in that order. keys returns the partition keys it sets
// (nil when only known at run time).
type processorKind struct {
	options any
	check   func(c config.Component) (checked, config.Errors)
	build   func(v checked, deps pipeline.Deps) (pipeline.Processor, error)
	rank    func(v checked) int
	keys    func(v checked) (keys []string, known bool)
}

// processor makes a processorKind from a processor package's usual
// functions: defaults, a pure Compile that validates every option, and New
// from the compiled value.
func processor[O, C any, P pipeline.Processor](defaults func() O, compile func(O) (C, error),
	build func(C, pipeline.Deps) (P, error), rank func(C) int) processorKind {
	var zero O
	return processorKind{
		options: zero,
		check: func(c config.Component) (checked, config.Errors) {
			return decodeAndCompile(c, defaults, compile)
		},
		build: func(v checked, deps pipeline.Deps) (pipeline.Processor, error) {
			return build(v.(C), deps)
		},
		rank: func(v checked) int { return rank(v.(C)) },
		keys: func(checked) ([]string, bool) { return nil, false },
	}
}

func fixed[C any](rank int) func(C) int { return func(C) int { return rank } }

func kindNames[K any](m map[string]K) string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// closer is what every built component that holds resources implements.
type closer interface {
	Close(ctx context.Context) error
}

// closeAll closes each component once, in order, and returns every error.
func closeAll(ctx context.Context, what string, cs ...closer) error {
	var errs []error
	for _, c := range cs {
		if c == nil {
			continue
		}
		if err := c.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("closing %s: %w", what, err))
		}
	}
	return errors.Join(errs...)
}
