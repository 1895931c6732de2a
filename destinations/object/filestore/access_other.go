//go:build !unix

package filestore

// writable is not checked where access(2) does not exist: Create reports
// what the stat in Ready cannot.
func writable(string) error { return nil }
