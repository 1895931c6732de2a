//go:build pprof

// A profiling build for development: go build -tags pprof ./cmd/sluice,
// then SLUICE_PPROF=127.0.0.1:6060 serves net/http/pprof there (the
// daemon and `sluice load` alike). Release builds do not contain it.

package main

import (
	"log/slog"
	"net/http"
	_ "net/http/pprof"
	"os"
)

func init() {
	if a := os.Getenv("SLUICE_PPROF"); a != "" {
		go func() { slog.Error("pprof server", "address", a, "err", http.ListenAndServe(a, nil)) }()
	}
}
