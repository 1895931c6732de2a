// Command pgproxy runs a fault-injecting PostgreSQL proxy
// (deploy/testpeers/pgproxy) for end-to-end tests and benchmark scripts:
//
//	pgproxy -listen 127.0.0.1:6432 -upstream 127.0.0.1:5432 -control 127.0.0.1:6433
//
// The control endpoint (only when -control is given) takes
// POST /block, /unblock, /cut-on-commit?n=N, /lose-commit-answer?n=N,
// /reset and GET /status, each answered with the status as JSON:
//
//	curl -s -X POST 127.0.0.1:6433/cut-on-commit?n=1
//
// It logs to stderr ("ready" with both addresses once listening) and stops
// on SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/sluice-dev/sluice/deploy/testpeers/pgproxy"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:6432", "address clients connect to")
	upstream := flag.String("upstream", "127.0.0.1:5432", "PostgreSQL server address")
	control := flag.String("control", "", "address of the HTTP control endpoint (default: none)")
	verbose := flag.Bool("v", false, "log every connection error")
	flag.Parse()

	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, log, *listen, *upstream, *control); err != nil {
		log.Error("pgproxy", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, log *slog.Logger, listen, upstream, control string) error {
	p, err := pgproxy.Listen(listen, upstream, log)
	if err != nil {
		return err
	}
	defer p.Close()
	controlAddr := ""
	errc := make(chan error, 1)
	var srv *http.Server
	if control != "" {
		ln, err := net.Listen("tcp", control)
		if err != nil {
			return fmt.Errorf("control listen: %w", err)
		}
		controlAddr = ln.Addr().String()
		srv = &http.Server{Handler: p.ControlHandler(), ReadHeaderTimeout: 10 * time.Second}
		go func() { errc <- srv.Serve(ln) }()
	}
	log.Info("ready", "listen", p.Addr(), "upstream", upstream, "control", controlAddr)
	select {
	case <-ctx.Done():
	case err := <-errc:
		return fmt.Errorf("control endpoint: %w", err)
	}
	if srv != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("control shutdown: %w", err)
		}
	}
	return p.Close()
}
