// Command sluice is a self-hosted delivery pipeline daemon compatible with
// the Amazon Kinesis Data Firehose API.
//
//	sluice run      --config FILE [--data-dir DIR]   run the daemon
//	sluice validate --config FILE                    check a config, print every error
//	sluice transform test --module m.wasm < FILE    run a WASM transform on samples
//	sluice schema infer < sample.ndjson              print a Parquet schema
//	sluice put      --stream NAME < FILE             send newline-delimited records
//	sluice load     [flags]                          load-test a running endpoint
//	sluice top      [--endpoint URL] [--once]        watch the streams (the status page's data)
//	sluice dlq      ls|show|replay -c FILE ...       list, show and replay dead letters
//	sluice decrypt  -c FILE OBJECT...                print objects Sluice encrypted at rest
//	sluice version                                   print the version
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `Usage: sluice <command> [flags]

Commands:
  run       run the daemon:            sluice run -c FILE [--data-dir DIR]
  validate  check a configuration:     sluice validate -c FILE
  transform test a WASM transform:   sluice transform test --module m.wasm < records.ndjson
  schema    infer a Parquet schema:    sluice schema infer < sample.ndjson
  put       send lines as records:     sluice put --stream NAME [--endpoint URL] < records.ndjson
  load      load-test an endpoint:     sluice load --stream NAME [--endpoint URL] ...
  top       watch the streams:         sluice top [--endpoint URL] [--admin-token T] [--interval 2s] [--once]
  dlq       dead letters:              sluice dlq ls|show|replay -c FILE [--stream S] ...
  decrypt   read encrypted outputs:    sluice decrypt -c FILE OBJECT... > plain
  version   print the version

Run 'sluice <command> -h' for the flags of a command.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches a subcommand and returns the process exit code.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "run":
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return cmdRun(ctx, args[1:], stdout, stderr)
	case "validate":
		return cmdValidate(args[1:], stdout, stderr)
	case "transform":
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return cmdTransform(ctx, args[1:], os.Stdin, stdout, stderr)
	case "schema":
		return cmdSchema(args[1:], os.Stdin, stdout, stderr)
	case "put":
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return cmdPut(ctx, args[1:], os.Stdin, stdout, stderr)
	case "load":
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return cmdLoad(ctx, args[1:], stdout, stderr)
	case "top":
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return cmdTop(ctx, args[1:], stdout, stderr)
	case "dlq":
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return cmdDLQ(ctx, args[1:], stdout, stderr)
	case "decrypt":
		return cmdDecrypt(args[1:], stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintf(stdout, "sluice %s\n", version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "sluice: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}

// exitCode maps an error to an exit code: 0 for nil, 1 otherwise.
func exitCode(err error, stderr io.Writer) int {
	if err == nil || errors.Is(err, context.Canceled) {
		return 0
	}
	fmt.Fprintf(stderr, "sluice: %v\n", err)
	return 1
}
