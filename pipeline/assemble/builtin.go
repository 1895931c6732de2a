package assemble

import (
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-dev/sluice/buffer/disk"
	"github.com/sluice-dev/sluice/destinations/elasticsearch"
	"github.com/sluice-dev/sluice/destinations/file"
	"github.com/sluice-dev/sluice/destinations/httpendpoint"
	"github.com/sluice-dev/sluice/destinations/postgres"
	"github.com/sluice-dev/sluice/destinations/redshift"
	"github.com/sluice-dev/sluice/destinations/s3"
	"github.com/sluice-dev/sluice/ingest/firehoseapi"
	"github.com/sluice-dev/sluice/ingest/kinesis"
	"github.com/sluice-dev/sluice/pipeline/runner"
	"github.com/sluice-dev/sluice/transform/deaggregate"
	"github.com/sluice-dev/sluice/transform/decompress"
	"github.com/sluice-dev/sluice/transform/delimiter"
	"github.com/sluice-dev/sluice/transform/jq"
	"github.com/sluice-dev/sluice/transform/wasm"
)

// This file lists every built-in component explicitly: no init()
// registries. Adding a destination means adding it to destinationKinds.

// Default max_in_flight per destination (a stream's max_in_flight key
// overrides it; 1 keeps strict order). Object stores write each batch as
// independent objects named by its identity, and an HTTP endpoint takes
// each batch as one idempotent request, so order across batches is not
// part of their contract: four batches in flight hide the round trip and
// fsync latency without holding much memory (four batches).
const (
	defaultInFlightObject = 4
	defaultInFlightHTTP   = 4
	// A Postgres load is a transaction of its own with its ledger row:
	// loads of one stream run concurrently (an upsert stream is limited
	// to one by its destination).
	defaultInFlightPostgres = 4
	// Redshift serialises COPYs into a table (and the load ledger's lock
	// does too): a second batch in flight stages its objects in S3 while
	// the first one's COPY runs.
	defaultInFlightRedshift = 2
	// Bulk requests of a stream are independent (document ids come from
	// the records): four in flight hide the cluster's latency.
	defaultInFlightBulk = 4
)

// destinationKinds are the destination types; those marked as error
// outputs are also the types an error_output block may have.
func destinationKinds() map[string]destinationKind {
	return map[string]destinationKind{
		"elasticsearch": withRetry(destination(elasticsearch.DefaultOptions, elasticsearch.Compile, elasticsearch.New, defaultInFlightBulk, false), searchRetry, firehoseRetryMax),
		"file":          destination(file.DefaultOptions, file.Compile, file.New, defaultInFlightObject, true),
		"s3":            destination(s3.DefaultOptions, s3.Compile, s3.New, defaultInFlightObject, true),
		"http_endpoint": withRetry(withBackoffMax(destination(httpendpoint.DefaultOptions, httpendpoint.Compile, httpendpoint.New, defaultInFlightHTTP, false), httpBackoffMax), httpRetry, firehoseRetryMax),
		"postgres":      withRetry(destination(postgres.DefaultOptions, postgres.Compile, postgres.New, defaultInFlightPostgres, false), warehouseRetry, 0),
		"redshift":      withRetry(destination(redshift.DefaultOptions, redshift.Compile, redshift.New, defaultInFlightRedshift, false), warehouseRetry, firehoseRetryMax),
	}
}

// httpBackoffMax is Firehose's cap on the backoff between attempts to an
// HTTP endpoint (1 s doubling, at most 120 s).
const httpBackoffMax = 120 * time.Second

// Retry durations, in seconds, when a stream sets none: Firehose's
// defaults for HTTP endpoints and OpenSearch (300 s) and Redshift (3600 s;
// Postgres likewise). Object stores keep config.DefaultRetry (24 hours).
// The maxima are Firehose's limits for those destinations (RetryOptions
// DurationInSeconds, 0–7200); Postgres has no Firehose counterpart and
// keeps config's 86400.
const (
	httpRetry        = 300
	searchRetry      = 300
	warehouseRetry   = 3600
	firehoseRetryMax = 7200
)

func withRetry(k destinationKind, seconds, max int) destinationKind {
	k.retryDefault, k.retryMax = seconds, max
	return k
}

func withBackoffMax(k destinationKind, d time.Duration) destinationKind {
	k.backoffMax = d
	return k
}

// errorOutputKinds are the destination kinds that can be a stream's
// error output.
func errorOutputKinds() map[string]destinationKind {
	out := map[string]destinationKind{}
	for name, k := range destinationKinds() {
		if k.errorOutput {
			out[name] = k
		}
	}
	return out
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
	meta := processor(jq.DefaultOptions, jq.Options.Compile, jq.New, fixed[jq.Compiled](rankMetadata))
	meta.keys = func(v checked) ([]string, bool) { return v.(jq.Compiled).Keys(), true }
	return map[string]processorKind{
		"record_deaggregation": processor(deaggregate.DefaultOptions, deaggregate.Options.Compile, deaggregate.New,
			func(c deaggregate.Compiled) int {
				if strings.EqualFold(c.SubRecordType(), deaggregate.TypeKPL) {
					return rankKPL
				}
				return rankSplit
			}),
		"decompression":       processor(decompress.DefaultOptions, decompress.Options.Compile, decompress.New, fixed[decompress.Compiled](rankDecompression)),
		"wasm":                processor(wasm.DefaultOptions, wasm.Options.Compile, wasm.New, fixed[wasm.Compiled](rankWasm)),
		"metadata_extraction": meta,
		"append_delimiter":    processor(delimiter.DefaultOptions, delimiter.Options.Compile, delimiter.New, fixed[delimiter.Compiled](rankDelimiter)),
	}
}

// metrics holds each package's metric set, created once per process.
type metrics struct {
	kinesis *kinesis.Metrics
	disk    *disk.Metrics
	runner  *runner.Metrics
	api     *firehoseapi.Metrics
	health  *healthMetrics
	reload  *reloadMetrics
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
	dm, err := disk.NewMetrics(reg)
	if err != nil {
		return metrics{}, fmt.Errorf("buffer metrics: %w", err)
	}
	hm, err := newHealthMetrics(reg)
	if err != nil {
		return metrics{}, err
	}
	km, err := kinesis.NewMetrics(reg)
	if err != nil {
		return metrics{}, fmt.Errorf("kinesis source metrics: %w", err)
	}
	rl, err := newReloadMetrics(reg)
	if err != nil {
		return metrics{}, err
	}
	return metrics{disk: dm, runner: rm, api: am, health: hm, kinesis: km, reload: rl}, nil
}
