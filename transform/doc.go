// Package transform holds Sluice's record processors: the implementations
// of pipeline.Processor a stream's processing configuration lists, one
// sub-package each (transform/jq is metadata_extraction). This package
// itself only documents how they fit together; it has no code yet.
//
// # Order of the processor chain
//
// Firehose applies its processors in a fixed order whatever order the
// configuration lists them in ("Data coming into Firehose will be processed
// in the following order: Deaggregation → Data Transformation via Lambda →
// Partitioning Keys", Firehose Developer Guide, "Apply dynamic partitioning
// to aggregated data"). Sluice runs a stream's processors in this order:
//
//  1. record_deaggregation (Firehose RecordDeAggregation): splits one put
//     record into sub-records (concatenated or newline-separated JSON
//     objects, or a custom delimiter), at most 500 per record.
//  2. decompression (Firehose Decompression, CloudWatch Logs payloads):
//     gunzips each record; failures go to decompression-failed.
//  3. wasm / lambda (Firehose Lambda): the record transformation; it may
//     drop records, fail them (processing-failed) and set partition keys
//     under "partitionKeyFromLambda:<name>".
//  4. metadata_extraction (Firehose MetadataExtraction, transform/jq):
//     extracts partition keys from JSON records with a jq 1.6 query and
//     sets them under "partitionKeyFromQuery:<name>"; failures go to
//     metadata-extraction-failed.
//  5. append_delimiter (Firehose AppendDelimiterToRecord): appends the
//     delimiter (usually "\n") to each record, last, so that it neither
//     breaks JSON parsing above nor reaches a transformation.
//
// # Conventions every processor follows
//
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
package transform
