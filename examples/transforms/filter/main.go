// Command filter is a Sluice WebAssembly transformation that drops JSON
// records whose top-level field equals a value, and passes every other
// record through unchanged (records that are not JSON objects included).
//
// The condition comes from the processor's env, DROP_FIELD (default
// "level") and DROP_VALUE (default "debug"), or from its config option,
// which takes precedence: config: {field: level, value: debug}. A string
// field matches its unescaped value; any other JSON value matches its
// literal text (DROP_VALUE=3 matches "n": 3, DROP_VALUE=true matches true).
// DROP_VALUE set to the empty string matches empty strings. An invalid
// config or an empty field name stops the processor at start-up.
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o filter.wasm ./examples/transforms/filter
package main

import (
	"os"

	"github.com/sluice-dev/sluice/transform/wasm/guest"
)

func init() {
	f := &filter{}
	guest.OnInit(func(config []byte) error { return f.configure(config, os.LookupEnv) })
	guest.Handle(f.handle)
}

// main is required by the toolchain; a reactor module never runs it.
func main() {}
