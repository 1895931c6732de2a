// Package jq implements the metadata_extraction processor: Firehose's
// dynamic partitioning with inline parsing (processor type
// MetadataExtraction, parameters MetadataExtractionQuery and
// JsonParsingEngine "JQ-1.6"). It runs after record transformation and
// before append_delimiter (see package transform).
//
// # Configuration
//
//	processors:
//	  - type: metadata_extraction
//	    query: '{customer_id: .customer_id, year: .ts | strftime("%Y")}'
//	    json_parsing_engine: JQ-1.6   # default, the only engine
//	    record_timeout: 1s            # Sluice extension, default 1s
//
// The query must be a jq object construction (the AWS CDK builds it as
// {"key":expr,...}) with 1 to 50 keys (MaxKeys; limit from the CDK's
// MetadataExtractionProcessor.jq16). Key names must be literal, as they are
// used in the prefix as !{partitionKeyFromQuery:<name>}. Object values must
// be valid jq 1.6, whose grammar accepts only terms joined by '|' there:
// `.ts | strftime("%Y")` is accepted, `.a + .b` and `if … end` must be
// parenthesised (Firehose reports "syntax error, unexpected if" for the
// latter). Options.Compile reports every problem at once and compiles the
// query once; New builds the processor from the result.
//
// # Evaluation
//
// Each record's data is parsed as one JSON value (encoding/json; numbers
// become float64, as jq 1.6 holds numbers as doubles; trailing whitespace
// is allowed, a second value is not). When every value of the query reads
// the record only through constant top-level field paths (.customer_id,
// .type.device, .ts | strftime("%Y"), "\(.a)-\(.b)"), the record is
// validated whole but only those members are decoded (parse.go); otherwise
// it is decoded whole. The compiled query runs on it
// (github.com/itchyny/gojq) under the batch's context and a per-record time
// budget. The query must yield exactly one object; each key's value must be
// a string (used as is), a number (printed as jq prints it: 1565382027, 1.5,
// 1e+21) or a boolean ("true"/"false"). The values are stored in
// pipeline.Record.Keys under KeyPrefix+name ("partitionKeyFromQuery:year").
// Record data is neither copied nor changed.
//
// gojq differs from jq 1.6 in a few builtins (regular expressions use Go's
// RE2 syntax instead of Oniguruma; env and $ENV are empty here so a query
// cannot read the daemon's environment; input, inputs and debug are not
// available). strftime, strptime, mktime and gmtime on epoch seconds, which
// the Firehose documentation uses, behave as in jq 1.6 (UTC).
//
// # Failures
//
// A record fails, and is dead-lettered with its original data, when it is
// not JSON, when the query fails at run time (e.g. strftime on a string,
// indexing an array with a name), runs longer than the record budget, yields
// no result, several results or a non-object, or when a key's value is
// null (a missing field), an array or an object. Its error is a
// *pipeline.CodedError with
//
//	Code:       "DynamicPartitioning.MetadataExtractionFailed"
//	OutputType: "metadata-extraction-failed"
//
// and the processor's ErrorOutputType is the same output type. The Firehose
// Developer Guide ("Troubleshoot dynamic partitioning errors") only says
// that records whose keys cannot be extracted go to the error output
// prefix, organised by error type, with error details; it names neither the
// code nor the type. Both are as observed on the real service in public
// repositories: the code DynamicPartitioning.MetadataExtractionFailed with
// the message "Non JSON record provided" for a record that is not JSON, and
// such records landing under "errors/metadata-extraction-failed/" and
// "kinesis-processing-errors-metadata-extraction-failed/", i.e. the
// !{firehose:error-output-type} folder of the error prefix. The message of a
// non-JSON record starts with that Firehose text; the other messages are
// Sluice's own.
//
// # Metrics
//
// sluice_jq_processing_duration_seconds{stream} (Firehose
// JQProcessing.Duration) observes, per processed batch, the time spent
// parsing records and running the query.
package jq
