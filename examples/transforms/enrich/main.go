// Command enrich is a Sluice WebAssembly transformation that sets partition
// keys for dynamic partitioning, leaving the data unchanged: with a prefix
// such as "customer=!{partitionKeyFromLambda:customer_id}/year=!{partitionKeyFromLambda:year}/"
// each JSON record goes under its customer and year.
//
//   - customer_id: the record's top-level "customer_id", a string (verbatim)
//     or a number (its JSON text);
//   - year: the UTC year of its "timestamp" field, RFC 3339
//     ("2024-05-01T12:00:00+02:00"; without a zone, "2024-05-01T12:00:00" or
//     "2024-05-01", it is taken as UTC), or of the record's arrival time when
//     the field is absent or null.
//
// A record that is not a JSON object, lacks customer_id or has an invalid
// timestamp is ProcessingFailed with the reason as message.
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o enrich.wasm ./examples/transforms/enrich
package main

import "github.com/sluice-dev/sluice/transform/wasm/guest"

func init() {
	e := &enricher{keys: make(map[string]string, 2)}
	guest.Handle(e.handle)
}

// main is required by the toolchain; a reactor module never runs it.
func main() {}
