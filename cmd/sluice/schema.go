package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/sluice-dev/sluice/destinations/format/parquet"
)

// cmdSchema implements `sluice schema infer`: read sample records (NDJSON)
// and print a Parquet schema block to paste under a destination's
// `format: {type: parquet, parquet: ...}`.
func cmdSchema(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "infer" {
		fmt.Fprintln(stderr, "usage: sluice schema infer [--max-records N] [--file F] < sample.ndjson")
		return 2
	}
	fs := flag.NewFlagSet("schema infer", flag.ContinueOnError)
	fs.SetOutput(stderr)
	maxRecords := fs.Int("max-records", 10000, "sample at most this many records (0: all)")
	file := fs.String("file", "-", "newline-delimited JSON sample; - is standard input")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
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
	s, err := parquet.Infer(in, *maxRecords)
	if err != nil {
		return exitCode(fmt.Errorf("schema infer: %w", err), stderr)
	}
	fmt.Fprintln(stdout, "# Parquet schema inferred by `sluice schema infer`; paste it under")
	fmt.Fprintln(stdout, "# destination.format.parquet and review types and required flags.")
	_, _ = stdout.Write(s.YAML())
	return 0
}
