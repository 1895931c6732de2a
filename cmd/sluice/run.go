package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/sluice-dev/sluice/config"
	"github.com/sluice-dev/sluice/pipeline/assemble"
)

// configFlags registers -c/--config (and optionally --data-dir) on fs.
func configFlags(fs *flag.FlagSet) *string {
	path := fs.String("config", "", "configuration file (YAML)")
	fs.StringVar(path, "c", "", "short for --config")
	return path
}

// minProcs is the fewest Ps the daemon runs with, whatever its CPU quota.
// With one P, a flood of puts keeps a goroutine always runnable, so the
// scheduler never polls the network itself and sockets become ready only
// when sysmon polls, every 10 ms, into the global run queue (golang/go
// #51651): delivery, which waits on the network for every bulk answer,
// starved (91k against 149k documents/s into VictoriaLogs from one CPU).
// A second P idles in netpoll and wakes at once; the CPU is still shared.
const minProcs = 2

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := configFlags(fs)
	dataDir := fs.String("data-dir", "", "directory for buffers and local output (overrides data_dir)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *path == "" {
		fmt.Fprintln(stderr, "sluice run: --config FILE is required")
		return 2
	}
	load := func() (*config.Config, error) {
		cfg, err := config.Load(*path)
		if cfg != nil && *dataDir != "" {
			cfg.DataDir = *dataDir
		}
		return cfg, err
	}
	cfg, err := load()
	if err != nil || cfg == nil {
		printConfigErrors(stderr, err)
		return 1
	}
	var level slog.LevelVar
	logger := newLogger(cfg.Log, &level, stderr)
	if n := runtime.GOMAXPROCS(0); n < minProcs && os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(minProcs)
		logger.Info("GOMAXPROCS raised for prompt network wake-ups", "cpus", n, "gomaxprocs", minProcs)
	}
	applyMemoryLimit(cfg, logger)
	format := cfg.Log.Format
	apply := func(next *config.Config) {
		level.Set(logLevel(next.Log))
		if !strings.EqualFold(next.Log.Format, format) {
			logger.Warn("log.format changes at the next restart", "running", format, "configured", next.Log.Format)
		}
		applyMemoryLimit(next, logger)
	}
	d, err := assemble.New(cfg, assemble.Options{Logger: logger, Version: version, Load: load, Apply: apply})
	if err != nil {
		var ce config.Errors
		if errors.As(err, &ce) {
			printConfigErrors(stderr, err)
			return 1
		}
		logger.Error("start-up failed", "err", err)
		return 1
	}
	// SIGHUP reloads the configuration (systemd's ExecReload), as POST
	// /-/reload does; the daemon logs the outcome.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				logger.Info("SIGHUP: reloading the configuration", "config", *path)
				_ = d.Reload(ctx) // logged by the daemon
			}
		}
	}()
	if err := d.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		logger.Error("stopped with an error", "err", err)
		return 1
	}
	return 0
}

func cmdValidate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := configFlags(fs)
	dataDir := fs.String("data-dir", "", "the data directory `sluice run` would use (overrides data_dir): its buffers are checked too")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *path == "" {
		fmt.Fprintln(stderr, "sluice validate: --config FILE is required")
		return 2
	}
	cfg, err := config.Load(*path)
	var all config.Errors
	if err != nil && !errors.As(err, &all) {
		fmt.Fprintf(stderr, "sluice validate: %v\n", err)
		return 1
	}
	if cfg != nil && *dataDir != "" {
		cfg.DataDir = *dataDir
	}
	if cfg != nil {
		// Components are checked even when the file has errors, so that
		// every error is reported in one run.
		var ce config.Errors
		if errors.As(assemble.Check(cfg), &ce) {
			all = append(all, ce...)
		}
	}
	if len(all) > 0 {
		all.Sort()
		printConfigErrors(stderr, all)
		return 1
	}
	for _, w := range assemble.Warnings(cfg) {
		fmt.Fprintf(stderr, "%s: warning: %s\n", *path, w)
	}
	fmt.Fprintf(stdout, "%s: configuration valid (%d streams)\n", *path, len(cfg.Streams))
	return 0
}

// printConfigErrors prints every configuration error on its own line.
func printConfigErrors(w io.Writer, err error) {
	var ce config.Errors
	if errors.As(err, &ce) {
		for _, e := range ce {
			fmt.Fprintln(w, e.Error())
		}
		fmt.Fprintf(w, "%d error(s)\n", len(ce))
		return
	}
	fmt.Fprintln(w, err)
}

// newLogger builds the process logger from the log block; its level is
// level's, which a reload changes.
func newLogger(c config.Log, level *slog.LevelVar, w io.Writer) *slog.Logger {
	level.Set(logLevel(c))
	opts := &slog.HandlerOptions{Level: level}
	if strings.EqualFold(c.Format, "json") {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func logLevel(c config.Log) slog.Level {
	var level slog.Level
	_ = level.UnmarshalText([]byte(strings.ToUpper(c.Level)))
	return level
}

// applyMemoryLimit sets the soft memory limit of memory_limit, unless
// GOMEMLIMIT is set.
func applyMemoryLimit(cfg *config.Config, logger *slog.Logger) {
	if cfg.MemoryLimit <= 0 {
		return
	}
	if env := os.Getenv("GOMEMLIMIT"); env != "" {
		logger.Info("memory_limit ignored: GOMEMLIMIT is set", "GOMEMLIMIT", env)
		return
	}
	if int64(cfg.MemoryLimit) != debug.SetMemoryLimit(-1) {
		debug.SetMemoryLimit(int64(cfg.MemoryLimit))
		logger.Info("soft memory limit set", "memory_limit", cfg.MemoryLimit.String())
	}
}
