// Package decompress implements the decompression processor: Firehose's
// Decompression processor (CompressionFormat GZIP) for CloudWatch Logs
// subscription records, with Firehose's CloudWatchLogProcessing message
// extraction (DataMessageExtraction) as an option. It runs after
// record_deaggregation and before the record transformation (see package
// transform).
//
// # Configuration
//
//	processors:
//	  - type: decompression
//	    compression_format: GZIP         # default, the only format
//	    cloudwatch_logs:
//	      data_message_extraction: true  # default false
//	    max_decompressed_bytes: 10485760 # Sluice extension, default 10 MiB
//
// # Decompression
//
// Every record must be gzip data (RFC 1952, as CloudWatch Logs sends it;
// concatenated members are decompressed one after the other). Its data is
// replaced by the decompressed bytes; ID, Arrived, Keys and Meta are kept.
// The output buffer is sized from the gzip trailer's ISIZE, bounded by
// max_decompressed_bytes and by deflate's largest ratio (1032:1) so that a
// forged trailer cannot make it allocate much; decompression stops as soon
// as the output would exceed max_decompressed_bytes, so a gzip bomb costs
// at most that much memory per record in flight. gzip is read with
// github.com/klauspost/compress/gzip; readers are pooled.
//
// # Message extraction
//
// With cloudwatch_logs.data_message_extraction, the decompressed data must
// be a CloudWatch Logs subscription payload: a JSON object {messageType,
// owner, logGroup, logStream, subscriptionFilters, logEvents: [{id,
// timestamp, message}]}. For a DATA_MESSAGE, each log event's message (the
// JSON string decoded) becomes a record of its own, and the envelope is
// dropped ("Firehose will filter out all metadata, such as owner, loggroup,
// logstream, and others, and deliver only the content inside the message
// fields", Firehose Developer Guide, "Message extraction"). The records
// are in log event order with IDs "<id>-<index>", the parent's Arrived and
// copies of its Keys and Meta; their data share one allocation per payload.
// Add append_delimiter to get one message per line in the objects.
//
// CloudWatch Logs sends CONTROL_MESSAGE payloads "mainly for checking if
// the destination is reachable" (CloudWatch Logs User Guide, subscription
// filters); they hold no log events. With extraction they are dropped and
// counted in sluice_decompression_control_messages_dropped_total, as the
// AWS Lambda blueprint for CloudWatch Logs (kinesis-firehose-cloudwatch-
// logs-processor) drops them. Without extraction the payload is not
// parsed and every decompressed record is kept as it is.
//
// # Failures
//
// Failed records are dead-lettered with their original (compressed) data,
// as Firehose does ("the record is delivered as is (in compressed format)
// to error S3 bucket … prefix called decompression-failed", Firehose
// Developer Guide, "Troubleshoot decompression"). Their error is a
// *pipeline.CodedError:
//
//   - not gzip, corrupt or truncated gzip: Code CodeInvalidGzip
//     ("Decompression.InvalidGzip"), OutputType "decompression-failed";
//   - decompressed size over max_decompressed_bytes: Code
//     CodeSizeLimitExceeded ("Decompression.SizeLimitExceeded"),
//     OutputType "decompression-failed";
//   - with extraction, data that is not JSON, has no messageType, a
//     messageType other than DATA_MESSAGE and CONTROL_MESSAGE, or a log
//     event without a message: Code CodeMessageExtractionFailed
//     ("CloudWatchLogs.MessageExtractionFailed"), OutputType
//     "processing-failed".
//
// The output type decompression-failed is Firehose's; Firehose documents
// no error codes for these failures and none for extraction failures, so
// the codes, and processing-failed for extraction, are Sluice's choices.
// ErrorOutputType is decompression-failed.
//
// # Metrics
//
// sluice_decompression_records_in_total{stream} and
// sluice_decompression_records_out_total{stream} count records given to
// and produced by the processor; sluice_decompression_control_messages_
// dropped_total{stream} counts dropped CONTROL_MESSAGE payloads.
package decompress
