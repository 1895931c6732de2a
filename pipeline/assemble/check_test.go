package assemble

import (
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/config"
)

func check(t *testing.T, yaml string) error {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(yaml), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return Check(cfg)
}

// TestCheckProcessorOrder: processors must be listed in Firehose's order;
// the error names both processors and the order.
func TestCheckProcessorOrder(t *testing.T) {
	err := check(t, `streams:
  s:
    processors:
      - type: append_delimiter
      - type: metadata_extraction
        query: '{k: .k}'
    destination: {type: file, path: out}
`)
	if err == nil || !strings.Contains(err.Error(), "test.yaml:5:9") ||
		!strings.Contains(err.Error(), "metadata_extraction must come before append_delimiter") {
		t.Fatalf("want an order error at the second processor, got %v", err)
	}
	if err := check(t, `streams:
  s:
    processors:
      - type: record_deaggregation
        sub_record_type: KPL
      - type: decompression
      - type: record_deaggregation
        sub_record_type: JSON
      - type: metadata_extraction
        query: '{k: .k}'
      - type: append_delimiter
    destination: {type: file, path: out, prefix: "k=!{partitionKeyFromQuery:k}/", error_output_prefix: "e/!{firehose:error-output-type}/"}
`); err != nil {
		t.Fatalf("a chain in Firehose's order: %v", err)
	}
}

// TestCheckReportsEveryComponentError: unknown types and bad options of
// several components come back together, with positions.
func TestCheckReportsEveryComponentError(t *testing.T) {
	err := check(t, `streams:
  a:
    processors:
      - type: nosuch
    destination: {type: file, path: out, compression: LZMA}
  b:
    destination: {type: s4}
`)
	for _, want := range []string{`test.yaml:4:15: streams.a.processors[0].type: unknown processor type "nosuch"`,
		`test.yaml:5:55: streams.a.destination.compression: unknown compression "LZMA"`,
		`test.yaml:7:25: streams.b.destination.type: unknown destination type "s4"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}

// TestCheckPartitionKeysHaveASource: a prefix's partition keys must be set
// by the stream's processors, or every record would fail partitioning.
func TestCheckPartitionKeysHaveASource(t *testing.T) {
	err := check(t, `streams:
  noquery:
    destination: {type: file, path: a, prefix: "c=!{partitionKeyFromQuery:c}/", error_output_prefix: "e/!{firehose:error-output-type}/"}
  wrongkey:
    processors:
      - {type: metadata_extraction, query: '{customer: .c}'}
    destination: {type: file, path: b, prefix: "c=!{partitionKeyFromQuery:c}/", error_output_prefix: "e/!{firehose:error-output-type}/"}
  nolambda:
    destination: {type: file, path: c, prefix: "y=!{partitionKeyFromLambda:year}/", error_output_prefix: "e/!{firehose:error-output-type}/"}
  fine:
    processors:
      - {type: metadata_extraction, query: '{c: .c}'}
    destination: {type: file, path: d, prefix: "c=!{partitionKeyFromQuery:c}/", error_output_prefix: "e/!{firehose:error-output-type}/"}
`)
	for _, want := range []string{
		`test.yaml:3:48: streams.noquery.destination.prefix: prefix uses !{partitionKeyFromQuery:c} but the stream has no metadata_extraction processor`,
		`test.yaml:7:48: streams.wrongkey.destination.prefix: prefix uses !{partitionKeyFromQuery:c} but the metadata_extraction query sets only [customer]`,
		`test.yaml:9:48: streams.nolambda.destination.prefix: prefix uses !{partitionKeyFromLambda:year} but the stream has no wasm processor`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if err != nil && strings.Contains(err.Error(), `streams.fine.`) {
		t.Errorf("a consistent stream was rejected: %v", err)
	}
}

// TestDefaultInFlight: the destination's default, lowered so that the
// batches in flight stay within 64 MiB.
func TestDefaultInFlight(t *testing.T) {
	for _, c := range []struct {
		mib  int64
		want int
	}{{1, 4}, {5, 4}, {16, 4}, {17, 3}, {32, 2}, {64, 1}, {128, 1}} {
		if got := defaultInFlight(4, c.mib<<20); got != c.want {
			t.Errorf("buffering %d MiB: %d in flight, want %d", c.mib, got, c.want)
		}
	}
}

// TestPlanDefaults: a stream that sets no retry duration gets its
// destination's (Firehose's) default; one that sets it keeps it; an
// upsert stream's max_in_flight is lowered to 1.
func TestPlanDefaults(t *testing.T) {
	cfg, err := config.Parse("test.yaml", []byte(`streams:
  files: {destination: {type: file, path: out}}
  hooks:
    destination: {type: http_endpoint, url: "http://127.0.0.1:9/"}
    error_output: {type: file, path: errors}
  hooks-set:
    retry: {duration: 60}
    destination: {type: http_endpoint, url: "http://127.0.0.1:9/"}
    error_output: {type: file, path: errors}
  pg:
    destination: {type: postgres, dsn: "postgres://u@h/db", table: t}
    error_output: {type: file, path: errors}
  pg-upsert:
    destination: {type: postgres, dsn: "postgres://u@h/db", table: t, mode: upsert, keys: [data]}
    error_output: {type: file, path: errors}
  rs:
    destination: {type: redshift, dsn: "postgres://u@h:5439/dev", table: t, iam_role: "arn:aws:iam::123456789012:role/r", staging: {bucket: staging}}
    error_output: {type: file, path: errors}
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	p, err := checkPlan(cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][2]int{ // retry seconds, max_in_flight
		"files": {86400, 4}, "hooks": {300, 4}, "hooks-set": {60, 4},
		"pg": {3600, 4}, "pg-upsert": {3600, 1}, "rs": {3600, 2},
	}
	for _, sp := range p.streams {
		if got := [2]int{sp.retry, sp.maxInFlight}; got != want[sp.cfg.Name] {
			t.Errorf("stream %s: retry %d s, max_in_flight %d; want %v", sp.cfg.Name, got[0], got[1], want[sp.cfg.Name])
		}
	}
}
