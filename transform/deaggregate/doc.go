// Package deaggregate implements the record_deaggregation processor: it
// splits one record into sub-records. It covers Firehose's
// RecordDeAggregation processor (SubRecordType JSON or DELIMITED) and the
// de-aggregation of Kinesis Producer Library (KPL) aggregated records that
// Firehose applies automatically to Kinesis Data Streams sources, here the
// explicit type KPL. It runs first in a stream's chain (see package
// transform).
//
// # Configuration
//
//	processors:
//	  - type: record_deaggregation
//	    sub_record_type: DELIMITED   # KPL, JSON or DELIMITED; required
//	    delimiter_base64: IyMjIw==   # "####", as Firehose takes it; or
//	    # delimiter: "####"          # the same in plain text (one of the two)
//	    max_sub_records: 0           # 0: 500 for JSON/DELIMITED, no limit for KPL
//
// sub_record_type has no default: Firehose requires SubRecordType, and a
// stream fed by the KPL says so with KPL.
//
// # KPL
//
// A record is a KPL aggregated record when it starts with the magic bytes
// F3 89 9A C2 and ends with the 16-byte MD5 of the protobuf
// AggregatedRecord between them (awslabs/amazon-kinesis-producer
// aggregation-format.md). The protobuf is decoded by hand (kpl.go, proto2
// wire format: unknown fields skipped, groups refused). Each user record
// becomes a record whose
//
//   - Data is the user record's data, a sub-slice of the aggregated
//     record's (not copied);
//   - ID is the aggregated record's ID followed by "-" and the user
//     record's zero-based index ("<id>-0", "<id>-1", …), stable across
//     redeliveries because the parent ID is;
//   - Meta is the parent's Meta plus MetaPartitionKey ("partitionKey"),
//     MetaExplicitHashKey ("explicitHashKey", only when the user record
//     has one) and MetaSubSequenceNumber ("subsequenceNumber", the index,
//     as Firehose's kinesisRecordMetadata spells it); Arrived and Keys are
//     the parent's.
//
// Following the KCL, a record without the magic, too short for the digest,
// with a digest that does not match, or whose protobuf cannot be decoded
// (truncated, wrong wire types, missing required fields, a table index out
// of range) is not an aggregated record and passes through unchanged; it is
// counted in sluice_deaggregation_kpl_passthrough_total{reason} (no_magic,
// bad_md5, invalid_protobuf). An aggregated record holding no user record
// yields nothing (visible as the difference of the in and out counters).
// The KPL's aggregation has no documented count limit, so KPL records are
// not limited unless max_sub_records is set.
//
// # JSON
//
// The record must be JSON objects, concatenated ({"a":1}{"a":2}) or
// separated by whitespace such as newlines (JSON Lines); an array of
// objects is not valid input (Firehose Developer Guide, "Apply dynamic
// partitioning to aggregated data"). Each object, without the whitespace
// around it, becomes a sub-record; every object is checked with
// json.Valid. A record with anything else (an array, a scalar, a comma
// between objects, invalid or unterminated JSON) or with no object fails
// whole with CodeInvalidJSON.
//
// # DELIMITED
//
// The record is cut at every occurrence of the delimiter, which is
// removed. A delimiter ends a sub-record: "a####b####" is two sub-records
// (the empty text after the final delimiter is none), "a########b" is three
// (the middle one empty), and a record without the delimiter is one, even
// when empty. Firehose takes the delimiter base64-encoded (Delimiter
// "IyMjIw==" for "####"); delimiter_base64 accepts that form and delimiter
// the plain text.
//
// # Sub-record IDs and limits for JSON and DELIMITED
//
// A record that yields one sub-record keeps its ID, Keys and Meta (its
// data is trimmed to the sub-record); a record that yields several gives
// them IDs "<id>-<index>" and copies of its Keys and Meta.
//
// Firehose caps JSON and DELIMITED de-aggregation at 500 sub-records per
// record and does not document what happens beyond. Sluice fails such a
// record whole (it is dead-lettered with its original data, never
// truncated) with CodeTooManySubRecords; max_sub_records changes the limit
// and applies to KPL records too when set.
//
// # Failures
//
// Failed records are reported as RecordErrors whose error is a
// *pipeline.CodedError with OutputType "processing-failed" (Firehose's
// error output type for records that fail processing; it documents none
// specific to de-aggregation) and Code CodeInvalidJSON
// ("RecordDeAggregation.InvalidJSON") or CodeTooManySubRecords
// ("RecordDeAggregation.TooManySubRecords"). Both codes are Sluice's own:
// Firehose documents no error codes for de-aggregation.
//
// # Metrics
//
// sluice_deaggregation_records_in_total{stream} and
// sluice_deaggregation_records_out_total{stream} count the records given
// to and produced by the processor; failed records are in the former only.
// sluice_deaggregation_kpl_passthrough_total{stream,reason} counts the
// records a KPL processor passed through unchanged.
package deaggregate
