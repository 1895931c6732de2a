package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/pipeline"
	"github.com/sluice-dev/sluice/transform/wasm"
)

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// cmdTransform implements `sluice transform test`: run a WASM module on
// sample records (one per line) and print one JSON result per record, the
// way the daemon's wasm processor would treat them, without the daemon.
func cmdTransform(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "test" {
		fmt.Fprintln(stderr, "usage: sluice transform test --module m.wasm [--env K=V] [--config S] [--timeout D] < records.ndjson")
		return 2
	}
	fs := flag.NewFlagSet("transform test", flag.ContinueOnError)
	fs.SetOutput(stderr)
	module := fs.String("module", "", "the .wasm module (required)")
	file := fs.String("file", "-", "records, one per line; - is standard input")
	config := fs.String("config", "", "configuration passed to the guest (as the wasm processor's config)")
	timeout := fs.Duration("timeout", wasm.DefaultTimeout, "time one call may take")
	var env stringList
	fs.Var(&env, "env", "K=V environment variable for the guest (repeatable)")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if *module == "" {
		fmt.Fprintln(stderr, "sluice transform test: --module is required")
		return 2
	}
	opts := wasm.DefaultOptions()
	opts.Module, opts.Timeout, opts.CacheDir = *module, *timeout, "-"
	if *config != "" {
		opts.Config = *config
	}
	if len(env) > 0 {
		opts.Env = map[string]string{}
		for _, kv := range env {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				fmt.Fprintf(stderr, "sluice transform test: --env %q is not K=V\n", kv)
				return 2
			}
			opts.Env[k] = v
		}
	}
	if err := opts.Validate(); err != nil {
		return exitCode(fmt.Errorf("transform test: %w", err), stderr)
	}
	in := stdin
	if *file != "-" {
		f, err := os.Open(*file)
		if err != nil {
			return exitCode(err, stderr)
		}
		defer f.Close()
		in = f
	}
	var recs []pipeline.Record
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 1<<20+1)
	now := time.Now()
	for sc.Scan() {
		recs = append(recs, pipeline.Record{Data: bytes.Clone(sc.Bytes()), Arrived: now})
	}
	if err := sc.Err(); err != nil {
		return exitCode(fmt.Errorf("reading records: %w", err), stderr)
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	results, err := wasm.RunModule(ctx, opts, pipeline.Deps{Logger: logger}, recs)
	if err != nil {
		return exitCode(fmt.Errorf("transform test: %w", err), stderr)
	}
	enc := json.NewEncoder(stdout)
	counts := map[string]int{}
	for _, r := range results {
		counts[r.Result]++
		out := struct {
			wasm.Result
			Text string `json:"text,omitempty"`
		}{Result: r}
		if json.Valid(r.Data) || isText(r.Data) {
			out.Text = string(r.Data) // readable next to the base64 data
		}
		if err := enc.Encode(out); err != nil {
			return exitCode(err, stderr)
		}
	}
	fmt.Fprintf(stderr, "%d records: %d Ok, %d Dropped, %d ProcessingFailed\n",
		len(results), counts[wasm.ResultOk], counts[wasm.ResultDropped], counts[wasm.ResultProcessingFailed])
	return 0
}

func isText(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c < 0x20 && c != '\t' && c != '\n' && c != '\r' || c == 0x7f {
			return false
		}
	}
	return true
}
