package assemble

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/sluice-dev/sluice/config"
	"github.com/sluice-dev/sluice/ingest/kinesis"
	"github.com/sluice-dev/sluice/pipeline"
	"github.com/sluice-dev/sluice/pipeline/seal"
)

// plan is a checked configuration: every component decoded and validated
// once, ready to build.
type plan struct {
	cfg     *config.Config
	streams []streamPlan
}

// streamPlan is one stream's checked components.
type streamPlan struct {
	cfg   *config.Stream
	dest  destinationKind
	destV checked
	// out is the error output when it is not the destination itself.
	out  *destinationKind
	outV checked
	// mode is the error output's backup mode (pipeline.Backup*).
	mode        string
	procs       []processorPlan
	maxInFlight int
	// retry is the stream's retry duration in seconds: retry.duration,
	// or the destination's default when the file sets none.
	retry int
	// src is the Kinesis source of a KinesisStreamAsSource stream
	// (hasSrc).
	src    kinesis.Compiled
	hasSrc bool
	// keys is the stream's keyring for encryption at rest (nil without
	// keys), keyPrint the fingerprint of the keys it holds.
	keys     *seal.Keyring
	keyPrint string
}

type processorPlan struct {
	cfg  config.Component
	kind processorKind
	v    checked
}

// Check decodes and validates every component of cfg without opening
// anything: what `sluice validate` runs after config.Load. Its errors are
// config.Errors, each at the key it is about.
func Check(cfg *config.Config) error {
	_, err := checkPlan(cfg)
	return err
}

func checkPlan(cfg *config.Config) (*plan, error) {
	kinds := destinationKinds()
	pkinds := processorKinds()
	p := &plan{cfg: cfg}
	ks, errs := loadKeys(cfg)
	for i := range cfg.Streams {
		s := &cfg.Streams[i]
		sp := streamPlan{cfg: s}
		if ks != nil {
			var err error
			if sp.keys, err = ks.keyring(s); err != nil {
				errs = append(errs, s.Pos.Errorf("%v", err))
			}
			sp.keyPrint = ks.print
		}
		ok := true
		k, known := kinds[s.Destination.Type]
		if !known {
			errs = append(errs, s.Destination.KeyErrorf("type", "unknown destination type %q (known: %s)", s.Destination.Type, kindNames(kinds)))
			ok = false
		} else {
			sp.dest = k
			v, es := k.check(s.Destination)
			errs = append(errs, es...)
			ok = ok && len(es) == 0
			sp.destV = v
		}
		es := checkErrorOutput(s, &sp, known)
		errs = append(errs, es...)
		ok = ok && len(es) == 0
		errs = append(errs, checkSource(s, &sp)...)
		last := -1
		for _, pc := range s.Processors {
			pk, known := pkinds[pc.Type]
			if !known {
				errs = append(errs, pc.KeyErrorf("type", "unknown processor type %q (known: %s)", pc.Type, kindNames(pkinds)))
				ok = false
				continue
			}
			v, es := pk.check(pc)
			if len(es) > 0 {
				errs = append(errs, es...)
				ok = false
				continue
			}
			if r := pk.rank(v); r < last {
				errs = append(errs, pc.Errorf("processor %s must come before %s: processors run in Firehose's order: %s",
					rankNames[r], rankNames[last], strings.Join(rankNames, ", ")))
				ok = false
			} else {
				last = r
			}
			sp.procs = append(sp.procs, processorPlan{cfg: pc, kind: pk, v: v})
		}
		if ok {
			errs = append(errs, checkPartitionKeys(&sp)...)
		}
		sp.retry = s.Retry.Duration
		if known && s.Retry.Written && k.retryMax > 0 && s.Retry.Duration > k.retryMax {
			errs = append(errs, s.Retry.Pos.Errorf("streams.%s.retry.duration: at most %d seconds for destination type %s (Firehose's limit), got %d",
				s.Name, k.retryMax, s.Destination.Type, s.Retry.Duration))
		}
		if known && !s.Retry.Written && k.retryDefault > 0 {
			sp.retry = k.retryDefault
		}
		sp.maxInFlight = s.MaxInFlight
		if sp.maxInFlight == 0 && known {
			sp.maxInFlight = defaultInFlight(k.maxInFlight, s.Buffering.Bytes())
		}
		if l, ok := sp.destV.(inFlightLimiter); ok {
			if n, key, why := l.MaxInFlight(); n > 0 {
				switch {
				case s.MaxInFlight > n:
					errs = append(errs, s.Destination.KeyErrorf(key, "%s: the stream's max_in_flight must be at most %d, not %d", why, n, s.MaxInFlight))
				case sp.maxInFlight > n:
					sp.maxInFlight = n
				}
			}
		}
		p.streams = append(p.streams, sp)
	}
	errs = append(errs, checkBuffers(cfg)...)
	if len(errs) > 0 {
		errs.Sort()
		return nil, errs
	}
	return p, nil
}

// inFlightBudget bounds the batch bytes a stream holds in flight by
// default: pipelining hides a destination's latency behind small batches;
// large batches amortize it already, and several of them at once would
// only multiply the memory held (and, for CPU-bound encodings such as
// Parquet, compete for the same cores).
const inFlightBudget = 64 << 20

// defaultInFlight is a stream's max_in_flight when it sets none: the
// destination's default, lowered so that the batches in flight stay
// within inFlightBudget (at least 1).
func defaultInFlight(kindDefault int, batchBytes int64) int {
	if batchBytes <= 0 {
		return kindDefault
	}
	return int(max(1, min(int64(kindDefault), inFlightBudget/batchBytes)))
}

// checkErrorOutput checks a stream's error_output block: required for a
// destination that is not an object store, optional otherwise (the
// destination is then its own error output, as before error_output
// existed).
func checkErrorOutput(s *config.Stream, sp *streamPlan, destKnown bool) config.Errors {
	sp.mode = pipeline.BackupFailedDataOnly
	eo := s.ErrorOutput
	if eo.IsZero() {
		if destKnown && !sp.dest.errorOutput {
			return config.Errors{s.Destination.Errorf("destination type %s has no object store of its own: the stream needs an error_output (type: file or s3) for its failed records",
				s.Destination.Type)}
		}
		return nil
	}
	mode, rest, errs := splitMode(eo)
	if len(errs) > 0 {
		return errs
	}
	kinds := errorOutputKinds()
	k, ok := kinds[eo.Type]
	if !ok {
		return config.Errors{eo.KeyErrorf("type", "unknown error output type %q (known: %s)", eo.Type, kindNames(kinds))}
	}
	v, es := k.check(rest)
	if len(es) > 0 {
		return es
	}
	sp.out, sp.outV, sp.mode = &k, v, mode
	return nil
}

// splitMode takes the mode key out of an error_output block: the rest is
// the store's own options.
func splitMode(c config.Component) (string, config.Component, config.Errors) {
	mode := pipeline.BackupFailedDataOnly
	n := c.Node
	if n == nil || n.Kind != yaml.MappingNode {
		return mode, c, nil
	}
	rest := *n
	rest.Content = nil
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value != "mode" {
			rest.Content = append(rest.Content, n.Content[i], n.Content[i+1])
			continue
		}
		switch v := n.Content[i+1].Value; v {
		case pipeline.BackupFailedDataOnly, pipeline.BackupAllData:
			mode = v
		default:
			return mode, c, config.Errors{c.KeyErrorf("mode", "%q is not one of %s, %s", v, pipeline.BackupFailedDataOnly, pipeline.BackupAllData)}
		}
	}
	c.Node = &rest
	return mode, c, nil
}

// inFlightLimiter is implemented by checked destination options that
// bound the batches in flight: n (0 for no bound), the option that sets the
// bound, and why (an upsert must commit a stream's batches in order).
type inFlightLimiter interface {
	MaxInFlight() (n int, key, why string)
}

// partitionKeyer is implemented by checked destination options whose
// prefixes read partition keys.
type partitionKeyer interface {
	PartitionKeys() []string
}

// checkPartitionKeys checks that every partition key a stream's prefix
// reads is set by one of its processors: !{partitionKeyFromQuery:k} by a
// metadata_extraction query that extracts k, !{partitionKeyFromLambda:k}
// by a wasm processor (whose keys are only known at run time). Otherwise
// every record would be dead-lettered as partitioning-failed.
func checkPartitionKeys(sp *streamPlan) config.Errors {
	pk, ok := sp.destV.(partitionKeyer)
	if !ok {
		return nil
	}
	var queryKeys []string
	haveQuery, haveRuntime := false, false
	for _, p := range sp.procs {
		keys, known := p.kind.keys(p.v)
		switch {
		case known:
			haveQuery = true
			queryKeys = append(queryKeys, keys...)
		case p.cfg.Type == "wasm":
			haveRuntime = true
		}
	}
	var errs config.Errors
	s := sp.cfg
	for _, full := range pk.PartitionKeys() {
		ns, key, _ := strings.Cut(full, ":")
		switch {
		case ns == "partitionKeyFromQuery" && !haveQuery:
			errs = append(errs, s.Destination.KeyErrorf("prefix", "prefix uses !{%s:%s} but the stream has no metadata_extraction processor to set it", ns, key))
		case ns == "partitionKeyFromQuery" && !contains(queryKeys, key):
			errs = append(errs, s.Destination.KeyErrorf("prefix", "prefix uses !{%s:%s} but the metadata_extraction query sets only %s", ns, key, keyList(queryKeys)))
		case ns == "partitionKeyFromLambda" && !haveRuntime:
			errs = append(errs, s.Destination.KeyErrorf("prefix", "prefix uses !{%s:%s} but the stream has no wasm processor to set it", ns, key))
		}
	}
	return errs
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func keyList(keys []string) string {
	if len(keys) == 0 {
		return "no keys"
	}
	return fmt.Sprintf("[%s]", strings.Join(keys, " "))
}
