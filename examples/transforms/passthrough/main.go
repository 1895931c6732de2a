// Command passthrough is a Sluice WebAssembly transformation that returns
// every record unchanged: the cheapest possible module, for benchmarks.
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o passthrough.wasm ./examples/transforms/passthrough
package main

import "github.com/sluice-dev/sluice/transform/wasm/guest"

func init() {
	guest.Handle(func(guest.Record) guest.Result { return guest.Pass() })
}

// main is required by the toolchain; a reactor module never runs it.
func main() {}
