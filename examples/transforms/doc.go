// Package transforms holds example Sluice WebAssembly transformation modules
// (processor type wasm, ../../transform/wasm/ABI.md), one per directory:
//
//   - passthrough: every record unchanged (benchmarks);
//   - mask-email: redacts every "email" value of JSON records, at any depth;
//   - filter: drops JSON records whose field DROP_FIELD equals DROP_VALUE;
//   - enrich: sets partition keys customer_id and year from JSON fields;
//   - wat-uppercase: hand-written WebAssembly text, upper-cases ASCII letters
//     and drops empty records (the ABI without any SDK).
//
// The Go examples use the guest SDK (../../transform/wasm/guest) and build
// with the standard toolchain:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o mask-email.wasm ./examples/transforms/mask-email
//
// The WAT example assembles with wabt:
//
//	wat2wasm -o uppercase.wasm examples/transforms/wat-uppercase/uppercase.wat
//
// This package's tests build every example and run it through the real host.
package transforms
