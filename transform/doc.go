// Package transform holds Sluice's record processors: the implementations
// of pipeline.Processor a stream's processing configuration lists, one
// sub-package each. This package documents how they fit together and holds
// the little they share (sub-record IDs, record counters).
//
//	processor type         package                Firehose processor
//	record_deaggregation   transform/deaggregate  RecordDeAggregation (+ KPL de-aggregation)
//	decompression          transform/decompress   Decompression, CloudWatchLogProcessing
//	wasm                   transform/wasm         Lambda (the record transformation)
//	metadata_extraction    transform/jq           MetadataExtraction
//	append_delimiter       transform/delimiter    AppendDelimiterToRecord
//
// # Order of the processor chain
//
// Firehose applies its processors in a fixed order whatever order the
// configuration lists them in ("Data coming into Firehose will be processed
// in the following order: Deaggregation → Data Transformation via Lambda →
// Partitioning Keys", Firehose Developer Guide, "Apply dynamic partitioning
// to aggregated data"; KPL records of a Kinesis source are de-aggregated
// "before it delivers them to AWS Lambda"). Sluice runs a stream's
// processors in this order:
//
//  1. record_deaggregation with sub_record_type KPL: splits Kinesis
//     Producer Library aggregated records into user records. It comes
//     first because it undoes the source's framing (Firehose does it on
//     read, before anything else); CloudWatch Logs payloads reach Kinesis
//     one per record, so a gzip payload is never KPL-aggregated inside.
//  2. decompression (Firehose Decompression and CloudWatchLogProcessing):
//     gunzips each record (failures go to decompression-failed) and
//     optionally extracts each CloudWatch Logs message as a record.
//  3. record_deaggregation with sub_record_type JSON or DELIMITED
//     (Firehose RecordDeAggregation): splits one record into concatenated
//     or newline-separated JSON objects, or at a custom delimiter, at most
//     500 per record. It runs after decompression, because JSON and
//     delimiters can only be found in decompressed data: a gzip record of
//     JSON Lines is decompressed, then split.
//  4. wasm (Firehose Lambda): the record transformation; it may drop
//     records, fail them (processing-failed) and set partition keys under
//     "partitionKeyFromLambda:<name>".
//  5. metadata_extraction (Firehose MetadataExtraction, transform/jq):
//     extracts partition keys from JSON records with a jq 1.6 query and
//     sets them under "partitionKeyFromQuery:<name>"; failures go to
//     metadata-extraction-failed.
//  6. append_delimiter (Firehose AppendDelimiterToRecord): appends the
//     delimiter (usually "\n") to each record, last, so that it neither
//     breaks JSON parsing above nor reaches a transformation.
//
// deaggregate.Processor.SubRecordType tells the two places of
// record_deaggregation apart.
//
// # Conventions every processor follows
//
//   - Each package has Options (decoded from the processor's YAML block
//     onto DefaultOptions()), Options.Compile, which reports every problem
//     at once as *pipeline.OptionError values at their keys and returns a
//     Compiled value (a query parsed and compiled, a delimiter decoded),
//     and New(Compiled, pipeline.Deps), which builds the processor from it
//     without validating again. Options.Validate is Compile without its
//     result. A processor that holds resources (wasm) has
//     Close(ctx context.Context) error.
//   - Partition keys live in pipeline.Record.Keys under a namespaced name:
//     "partitionKeyFromQuery:<name>" and "partitionKeyFromLambda:<name>",
//     exactly as the prefix expressions !{partitionKeyFromQuery:<name>} and
//     !{partitionKeyFromLambda:<name>} name them.
//   - A record that fails is reported as a pipeline.RecordError whose error
//     is a *pipeline.CodedError carrying the Firehose error code and error
//     output type; the runner dead-letters it with its input data. No
//     record is dropped silently.
//   - Processors leave their input batch intact (the runner dead-letters
//     from it by index) and do not copy record data they do not change.
//     Record data may share backing arrays (sub-records are slices of
//     their parent), so no processor appends to record data in place.
//   - A processor that splits a record names the parts "<id>-<index>",
//     stable because record IDs are, and gives each its own copies of the
//     parent's Keys and Meta.
package transform
