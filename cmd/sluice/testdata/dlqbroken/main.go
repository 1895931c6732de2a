// Command dlqbroken is the "broken" transform of the dead-letter replay
// test (cmd/sluice/dlq_test.go): it fails every record whose last byte is
// an even digit, and passes the others, so half of the test's records are
// dead-lettered as processing-failed until the module is replaced.
package main

import "github.com/sluice-dev/sluice/transform/wasm/guest"

func init() {
	guest.Handle(func(r guest.Record) guest.Result {
		n := len(r.Data)
		if n > 0 && r.Data[n-1] >= '0' && r.Data[n-1] <= '9' && (r.Data[n-1]-'0')%2 == 0 {
			return guest.Fail("broken transform: even record " + string(r.Data[max(0, n-12):]))
		}
		return guest.Pass()
	})
}

// main is required by the toolchain; a reactor module never runs it.
func main() {}
