// Package delimiter implements the append_delimiter processor: Firehose's
// AppendDelimiterToRecord, which adds a delimiter after each record so that
// the records of an S3 object can be told apart (Firehose concatenates
// records without one by default). It runs last in a stream's chain (see
// package transform), so that the delimiter neither breaks JSON parsing by
// earlier processors nor reaches a transformation.
//
// # Configuration
//
//	processors:
//	  - type: append_delimiter
//	    delimiter: "\n"   # default
//
// # Behaviour
//
// Every record's data becomes its data followed by the delimiter; ID,
// Arrived, Keys and Meta are kept and no record fails. Record data may
// share a backing array (sub-records of one aggregated record are slices
// of it), so appending in place could overwrite the next record: the
// processor copies the batch into one arena allocated per batch, with each
// record's slice capped at its end, and leaves the input batch unchanged.
// BenchmarkProcess1KiB compares this with one allocation per record.
//
// # Metrics
//
// sluice_append_delimiter_records_in_total{stream} and
// sluice_append_delimiter_records_out_total{stream} count records given to
// and produced by the processor (always equal).
package delimiter
