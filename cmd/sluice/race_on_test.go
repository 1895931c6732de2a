//go:build race

package main

// raceBuild: the tests run with the race detector, so the daemon of the
// reload tests is built with it too.
const raceBuild = true
