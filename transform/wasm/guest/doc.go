// Package guest is the Go SDK for Sluice WebAssembly transformation modules:
// the guest side of ABI version 1 (../ABI.md), which mirrors Amazon Data
// Firehose's Lambda transformation contract. A module is a function from
// one record to one result, registered from an init function:
//
//	package main
//
//	import "github.com/sluice-dev/sluice/transform/wasm/guest"
//
//	func init() {
//		guest.Handle(func(r guest.Record) guest.Result {
//			if len(r.Data) == 0 {
//				return guest.Drop()
//			}
//			return guest.Replace(bytes.ToUpper(r.Data))
//		})
//	}
//
//	func main() {} // required by the toolchain, never called
//
// and built as a WASI reactor with the standard toolchain:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o upper.wasm .
//
// The host runs the module's package initialisation (the reactor's
// _initialize export), so registration must happen in an init function
// or a package-level variable initialiser: main is never called.
//
// # Records and results
//
// Each call of the host carries many records; the SDK decodes them one at a
// time into a Record, calls the handler, and encodes its Result directly
// into an output buffer reused across calls, so a handler that allocates
// nothing makes the SDK allocate nothing per record.
//
// Consequently a Record is only valid during the handler call: ID, Data, the
// Meta map (reused across records) and the strings of Invocation alias the
// host's input buffer, which the host overwrites on the next call. Copy what
// must outlive the call (strings.Clone, bytes.Clone, maps.Clone). The
// handler may modify Data in place and return it (or a sub-slice of it) as
// the new data; Data's capacity is its length, so appending to it copies.
//
// The SDK encodes a Result before calling the handler again, so a handler
// may reuse one output buffer and one PartitionKeys map across records.
//
// A handler that panics fails its record (ProcessingFailed, message
// "panic: <value>") rather than the whole call: a panic is a property of the
// record, and Firehose does not retry per-record failures. Runtime fatal
// errors (out of memory, stack exhaustion) still trap, failing the call
// with Lambda.FunctionError.
//
// # Configuration and environment
//
// The processor's env map is the module's environment: read it with
// os.Getenv. Its config option is available from Config once the host has
// called sluice_init; OnInit registers a function that validates it (an
// error makes the processor fail to start). Diagnostics written to stdout
// and stderr end up in Sluice's log.
//
// The exported functions (sluice_alloc, sluice_transform, ...) exist only
// when building for GOOS=wasip1; on other platforms the package compiles,
// so that handlers can be unit-tested with go test on the host.
package guest
