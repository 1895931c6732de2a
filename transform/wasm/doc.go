// Package wasm implements the wasm processor: Firehose's record
// transformation through a Lambda function (processor type Lambda), with
// the function replaced by a WebAssembly module run in-process by wazero.
// The host/guest contract is ABI.md (version 1) in this directory; it
// mirrors Firehose's Lambda transformation contract with a binary framing
// instead of JSON and base64.
//
// # Configuration
//
//	processors:
//	  - type: wasm
//	    module: /etc/sluice/transform.wasm   # required
//	    batch_records: 10000   # max records per call
//	    batch_bytes: 1MiB      # max payload per call (Firehose BufferSizeInMBs default)
//	    timeout: 10s           # per call; the call is interrupted
//	    memory_limit: 128MiB   # per instance
//	    instances: 2           # default GOMAXPROCS: concurrent calls
//	    retries: 3             # Firehose NumberOfRetries
//	    env: {LEVEL: info}     # the guest's whole environment
//	    config: {table: t}     # to sluice_init: a string verbatim, else JSON
//	    allow_fs: [/srv/geo]   # read-only host directories; default none
//	    cache_dir: /var/lib/sluice/wasm-cache   # default <data_dir>/wasm-cache
//	    region: us-east-1      # fills the delivery stream ARN given to the guest
//
// # Execution
//
// New compiles the module once, through wazero's compilation cache on disk
// (a restart loads the compiled code instead of compiling again), and
// creates one instance to check the ABI version and run sluice_init.
// Process cuts a batch into calls of at most batch_records records and
// batch_bytes bytes and runs them concurrently on a pool of instances
// (created on demand, up to instances). A call writes all its records into
// guest memory in one buffer, makes one guest call and reads one result
// buffer: there is no per-record host call, and the host allocates per call,
// not per record (one block for all the new data of a call; records whose
// data the guest marks unchanged are not copied at all).
//
// A call that exceeds timeout is interrupted (wazero closes the instance
// when the call's context is done); a trap, a language panic, proc_exit or
// exhausted memory fails the call and nothing else. A failed instance is
// closed and replaced, never reused. A failed call is retried on a fresh
// instance up to retries times; then each of its records is a RecordError.
// The guest sees only its env, its config, the directories of allow_fs
// (read-only), the clocks and random numbers: no host files, no sockets.
// Its stdout and stderr go to the log, line by line, rate-limited.
//
// # Error codes
//
// Every failed record is a pipeline.RecordError whose error is a
// *pipeline.CodedError with OutputType "processing-failed"; the runner
// writes it with its original data in Firehose's error-record shape.
//
//   - Lambda.ProcessingFailedStatus, message "ProcessingFailed status set
//     for record": the guest's ProcessingFailed result (code and message as
//     observed on the real service, ../../../shared/firehose-contract.md §5).
//   - Lambda.MissingRecordId, Lambda.DuplicatedRecordId: an input recordId
//     without a result, or with several (Firehose documentation, contract
//     §5 and checklist item 28).
//   - Lambda.JsonProcessingException: an unparseable response (Firehose's
//     code for a Lambda response it cannot parse, contract §5); here, a
//     malformed output buffer.
//   - Lambda.FunctionError: a trap, panic, exit or guest-reported failure
//     (the code Firehose reports for function errors, contract §5 [I]).
//   - Lambda.FunctionTimeout: a call interrupted by timeout. Firehose
//     documents no specific code for a Lambda timeout; this one is
//     Sluice's, named like the others.
//
// Dropped records are removed from the batch and counted, not reported.
// Ok records get the new data and their partition keys in
// pipeline.Record.Keys under "partitionKeyFromLambda:<key>" (KeyPrefix),
// for !{partitionKeyFromLambda:<key>} in the prefix.
//
// # Metrics
//
// sluice_processing_duration_seconds{stream,processor="wasm"} per call
// (ExecuteProcessing.Duration); sluice_processing_calls_total{stream,
// processor,result=success|timeout|function_error|invalid_response}
// (ExecuteProcessing.Success as counters);
// sluice_processing_records_total{stream,processor,result=ok|dropped|failed}
// (SucceedProcessing.Records); sluice_processing_bytes_total{stream,
// processor} (SucceedProcessing.Bytes); sluice_wasm_instantiations_total{module}.
//
// RunModule runs a module once on records for `sluice transform test`.
package wasm
