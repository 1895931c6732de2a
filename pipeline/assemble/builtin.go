package assemble

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-dev/sluice/buffer"
	"github.com/sluice-dev/sluice/buffer/disk"
	"github.com/sluice-dev/sluice/buffer/memory"
	"github.com/sluice-dev/sluice/config"
	"github.com/sluice-dev/sluice/destinations/file"
	"github.com/sluice-dev/sluice/destinations/s3"
	"github.com/sluice-dev/sluice/ingest/firehoseapi"
	"github.com/sluice-dev/sluice/pipeline"
	"github.com/sluice-dev/sluice/pipeline/runner"
	"github.com/sluice-dev/sluice/transform/deaggregate"
	"github.com/sluice-dev/sluice/transform/decompress"
	"github.com/sluice-dev/sluice/transform/delimiter"
	"github.com/sluice-dev/sluice/transform/jq"
	"github.com/sluice-dev/sluice/transform/wasm"
)

// This file lists every built-in component explicitly: no init()
// registries. Adding a destination means adding it to destinationKinds.

// metrics holds each package's metric set, created once per process.
type metrics struct {
	disk   *disk.Metrics
	runner *runner.Metrics
	api    *firehoseapi.Metrics
}

// processorKind decodes, validates and provisions one processor type.
// rank is the processor's place in Firehose's chain (package transform):
// a stream's processors must be listed in that order.
type processorKind struct {
	options any // the zero options struct, for documentation checks
	check   func(c config.Component) error
	build   func(c config.Component, deps pipeline.Deps) (pipeline.Processor, error)
	rank    func(c config.Component) int
}

// Chain ranks (package transform documents the order).
const (
	rankKPL = iota
	rankDecompression
	rankSplit
	rankWasm
	rankMetadata
	rankDelimiter
)

// rankNames name the ranks in errors.
var rankNames = []string{"record_deaggregation (KPL)", "decompression",
	"record_deaggregation (JSON, DELIMITED)", "wasm", "metadata_extraction", "append_delimiter"}

func processorKinds() map[string]processorKind {
	return map[string]processorKind{
		"record_deaggregation": component(deaggregate.DefaultOptions, deaggregate.Options.Validate, deaggregate.New,
			func(o deaggregate.Options) int {
				if strings.EqualFold(o.SubRecordType, deaggregate.TypeKPL) {
					return rankKPL
				}
				return rankSplit
			}),
		"decompression":       component(decompress.DefaultOptions, decompress.Options.Validate, decompress.New, fixed[decompress.Options](rankDecompression)),
		"wasm":                component(wasm.DefaultOptions, wasm.Options.Validate, wasm.New, fixed[wasm.Options](rankWasm)),
		"metadata_extraction": component(jq.DefaultOptions, jq.Options.Validate, jq.New, fixed[jq.Options](rankMetadata)),
		"append_delimiter":    component(delimiter.DefaultOptions, delimiter.Options.Validate, delimiter.New, fixed[delimiter.Options](rankDelimiter)),
	}
}

func fixed[O any](rank int) func(O) int { return func(O) int { return rank } }

// component builds a processorKind from a processor package's usual
// functions: decode onto the defaults, validate, provision.
func component[O any, P pipeline.Processor](defaults func() O, validate func(O) error,
	build func(O, pipeline.Deps) (P, error), rank func(O) int) processorKind {
	decode := func(c config.Component) (O, error) {
		opts := defaults()
		if err := c.Decode(&opts); err != nil {
			return opts, err
		}
		if err := validate(opts); err != nil {
			return opts, c.Errorf("%v", err)
		}
		return opts, nil
	}
	var zero O
	return processorKind{
		options: zero,
		check: func(c config.Component) error {
			_, err := decode(c)
			return err
		},
		build: func(c config.Component, deps pipeline.Deps) (pipeline.Processor, error) {
			opts, err := decode(c)
			if err != nil {
				return nil, err
			}
			return build(opts, deps)
		},
		rank: func(c config.Component) int {
			opts, _ := decode(c)
			return rank(opts)
		},
	}
}

func newMetrics(reg prometheus.Registerer) (metrics, error) {
	rm, err := runner.NewMetrics(reg)
	if err != nil {
		return metrics{}, fmt.Errorf("runner metrics: %w", err)
	}
	am, err := firehoseapi.NewMetrics(reg)
	if err != nil {
		return metrics{}, fmt.Errorf("api metrics: %w", err)
	}
	return metrics{disk: disk.NewMetrics(reg), runner: rm, api: am}, nil
}

// builtDestination is what a destination kind provisions for one stream.
type builtDestination struct {
	dest        pipeline.Destination
	deadLetters pipeline.DeadLetterWriter
	info        firehoseapi.StreamInfo // Destination part filled in
	where       string                 // for the start-up log line
}

// destinationKind decodes, validates and provisions one destination type
// (Caddy's decode → validate → provision; Close is the cleanup).
type destinationKind struct {
	options any // the zero options struct, for documentation checks
	check   func(c config.Component) error
	build   func(s *config.Stream, deps pipeline.Deps) (builtDestination, error)
}

func destinationKinds() map[string]destinationKind {
	return map[string]destinationKind{
		"file": {options: file.Options{}, check: checkFile, build: buildFile},
		"s3":   {options: s3.Options{}, check: checkS3, build: buildS3},
	}
}

func kindNames[K any](m map[string]K) string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

func decodeFile(c config.Component) (file.Options, error) {
	opts := file.DefaultOptions()
	if err := c.Decode(&opts); err != nil {
		return opts, err
	}
	if err := opts.Validate(); err != nil {
		return opts, c.Errorf("%v", err)
	}
	return opts, nil
}

func checkFile(c config.Component) error {
	_, err := decodeFile(c)
	return err
}

func buildFile(s *config.Stream, deps pipeline.Deps) (builtDestination, error) {
	opts, err := decodeFile(s.Destination)
	if err != nil {
		return builtDestination{}, err
	}
	if !filepath.IsAbs(opts.Path) {
		opts.Path = filepath.Join(deps.DataDir, opts.Path)
	}
	dest, err := file.New(opts, s.Name, deps)
	if err != nil {
		return builtDestination{}, err
	}
	var info firehoseapi.StreamInfo
	info.Destination = firehoseapi.DestinationInfo{
		Kind:              "file",
		Compression:       strings.ToUpper(opts.Compression),
		Prefix:            opts.Prefix,
		ErrorOutputPrefix: opts.ErrorOutputPrefix,
		BucketARN:         "arn:aws:s3:::" + strings.Trim(filepath.ToSlash(opts.Path), "/"),
	}
	return builtDestination{dest: dest, deadLetters: dest, info: info, where: opts.Path}, nil
}

func decodeS3(c config.Component) (s3.Options, error) {
	opts := s3.DefaultOptions()
	if err := c.Decode(&opts); err != nil {
		return opts, err
	}
	if err := opts.Validate(); err != nil {
		return opts, c.Errorf("%v", err)
	}
	return opts, nil
}

func checkS3(c config.Component) error {
	_, err := decodeS3(c)
	return err
}

func buildS3(s *config.Stream, deps pipeline.Deps) (builtDestination, error) {
	opts, err := decodeS3(s.Destination)
	if err != nil {
		return builtDestination{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dest, err := s3.New(ctx, opts, s.Name, deps)
	if err != nil {
		return builtDestination{}, err
	}
	var info firehoseapi.StreamInfo
	info.Destination = firehoseapi.DestinationInfo{
		Kind:              "s3",
		Compression:       opts.Compression,
		Prefix:            opts.Prefix,
		ErrorOutputPrefix: opts.ErrorOutputPrefix,
		BucketARN:         "arn:aws:s3:::" + opts.Bucket,
	}
	where := "s3://" + opts.Bucket + "/" + opts.Prefix
	if opts.Endpoint != "" {
		where += " at " + opts.Endpoint
	}
	return builtDestination{dest: dest, deadLetters: dest, info: info, where: where}, nil
}

// openBuffer opens a stream's buffer under <data_dir>/buffer/<stream>.
func openBuffer(s *config.Stream, dataDir string, log *slog.Logger, m metrics) (buffer.Buffer, error) {
	bc := s.Buffer
	switch bc.Type {
	case "memory":
		return memory.New(memory.Options{MaxBytes: int64(bc.MaxBytes)}), nil
	default:
		b, err := disk.Open(disk.Options{
			Dir:          filepath.Join(dataDir, "buffer", s.Name),
			Stream:       s.Name,
			Durability:   buffer.Durability(bc.Durability),
			SegmentBytes: int64(bc.SegmentBytes),
			MaxBytes:     int64(bc.MaxBytes),
			MinFreeBytes: minFree(bc.MinFreeBytes),
			Logger:       log,
			Metrics:      m.disk,
		})
		if err != nil {
			return nil, fmt.Errorf("stream %s: opening buffer: %w", s.Name, err)
		}
		return b, nil
	}
}

func bufferDescription(s *config.Stream, dataDir string) string {
	if s.Buffer.Type == "memory" {
		return "memory (lossy)"
	}
	return filepath.Join(dataDir, "buffer", s.Name) + " (" + s.Buffer.Durability + ")"
}

// minFree maps the config's min_free_bytes (0: no reserve) to
// disk.Options.MinFreeBytes (negative: no reserve).
func minFree(b config.Size) int64 {
	if b == 0 {
		return -1
	}
	return int64(b)
}
