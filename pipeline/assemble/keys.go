package assemble

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/sluice-dev/sluice/config"
	"github.com/sluice-dev/sluice/pipeline"
	"github.com/sluice-dev/sluice/transform/jq"
)

// partitionKeyRE finds the partition-key expressions of a prefix.
var partitionKeyRE = regexp.MustCompile(`!\{(partitionKeyFrom(?:Query|Lambda)):([^}]*)\}`)

// checkPartitionKeys checks that every partition key a stream's prefix
// reads is set by one of its processors: !{partitionKeyFromQuery:k} by a
// metadata_extraction query that extracts k, !{partitionKeyFromLambda:k}
// by a wasm processor (whose keys are only known at run time). Otherwise
// every record would be dead-lettered as partitioning-failed.
func checkPartitionKeys(s *config.Stream, pkinds map[string]processorKind) config.Errors {
	var opts struct {
		Prefix string `yaml:"prefix"`
	}
	if s.Destination.Node == nil {
		return nil
	}
	// Only the prefix matters here; the destination's own check reports
	// everything else, so decoding errors are ignored.
	_ = config.DecodeNode(lenient(s.Destination.Node), &opts)
	matches := partitionKeyRE.FindAllStringSubmatch(opts.Prefix, -1)
	if len(matches) == 0 {
		return nil
	}
	var queryKeys []string
	haveQuery, haveWasm := false, false
	for _, p := range s.Processors {
		switch p.Type {
		case "metadata_extraction":
			haveQuery = true
			proc, err := pkinds[p.Type].build(p, pipeline.Deps{})
			if err != nil {
				return nil // the processor's own check reports it
			}
			queryKeys = append(queryKeys, proc.(*jq.Processor).Keys()...)
		case "wasm":
			haveWasm = true
		}
	}
	var errs config.Errors
	for _, m := range matches {
		ns, key := m[1], m[2]
		switch {
		case ns == "partitionKeyFromQuery" && !haveQuery:
			errs = append(errs, s.Destination.KeyErrorf("prefix", "stream %q: prefix uses !{%s:%s} but the stream has no metadata_extraction processor to set it", s.Name, ns, key))
		case ns == "partitionKeyFromQuery" && !slices.Contains(queryKeys, key):
			errs = append(errs, s.Destination.KeyErrorf("prefix", "stream %q: prefix uses !{%s:%s} but the metadata_extraction query sets only %s", s.Name, ns, key, keyList(queryKeys)))
		case ns == "partitionKeyFromLambda" && !haveWasm:
			errs = append(errs, s.Destination.KeyErrorf("prefix", "stream %q: prefix uses !{%s:%s} but the stream has no wasm processor to set it", s.Name, ns, key))
		}
	}
	return errs
}

func keyList(keys []string) string {
	if len(keys) == 0 {
		return "no keys"
	}
	return fmt.Sprintf("[%s]", strings.Join(keys, " "))
}

// lenient returns a copy of a component's mapping node holding only its
// prefix key, so that decoding it cannot fail on the component's other
// options.
func lenient(n *yaml.Node) *yaml.Node {
	out := &yaml.Node{Kind: yaml.MappingNode, Tag: n.Tag, Line: n.Line, Column: n.Column}
	if n.Kind != yaml.MappingNode {
		return out
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "prefix" {
			out.Content = append(out.Content, n.Content[i], n.Content[i+1])
		}
	}
	return out
}
