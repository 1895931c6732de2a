package assemble

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sluice-dev/sluice/config"
)

// opsHandler serves /metrics, /healthz, /readyz and /debug/pprof/. With a
// token, /metrics and /debug/pprof/ need "Authorization: Bearer <token>"
// (Prometheus's bearer_token); the probes stay open, for orchestrators.
func opsHandler(reg *prometheus.Registry, ready func() error, token string) http.Handler {
	mux := http.NewServeMux()
	guard := func(h http.Handler) http.Handler { return bearer(token, h) }
	mux.Handle("GET /metrics", guard(promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})))
	// Go's profiler, for finding hot spots in production (pprof).
	mux.Handle("GET /debug/pprof/", guard(http.HandlerFunc(pprof.Index)))
	mux.Handle("GET /debug/pprof/profile", guard(http.HandlerFunc(pprof.Profile)))
	mux.Handle("GET /debug/pprof/trace", guard(http.HandlerFunc(pprof.Trace)))
	mux.Handle("GET /debug/pprof/symbol", guard(http.HandlerFunc(pprof.Symbol)))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := ready(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = fmt.Fprintf(w, "not ready: %v\n", err)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	return mux
}

// bearer requires token (when not empty) as a bearer token: 401 without
// it, compared in constant time.
func bearer(token string, h http.Handler) http.Handler {
	if token == "" {
		return h
	}
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="sluice"`)
			http.Error(w, "a bearer token is required (admin_token)", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// apiWithOps routes GET requests for the operational paths to ops and every
// other request to the Firehose API (which answers on POST /).
func apiWithOps(api, ops http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			switch p := r.URL.Path; {
			case p == "/metrics", p == "/healthz", p == "/readyz", strings.HasPrefix(p, "/debug/pprof/"):
				ops.ServeHTTP(w, r)
				return
			}
		}
		api.ServeHTTP(w, r)
	})
}

// server is one HTTP listener with its purpose, for logs.
type server struct {
	name string
	srv  *http.Server
	ln   net.Listener
}

func listen(name, addr string, h http.Handler, t config.TLS, log *slog.Logger) (*server, error) {
	tc, err := tlsConfig(t, log.With("server", name))
	if err != nil {
		return nil, fmt.Errorf("%s listener on %s: %w", name, addr, err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s listener on %s: %w", name, addr, err)
	}
	return &server{name: name, ln: ln, srv: &http.Server{
		Handler:           h,
		TLSConfig:         tc,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}}, nil
}

func (s *server) serve(errc chan<- error) {
	go func() {
		var err error
		if s.srv.TLSConfig != nil {
			err = s.srv.ServeTLS(s.ln, "", "") // certificates from TLSConfig.GetCertificate
		} else {
			err = s.srv.Serve(s.ln)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("%s server: %w", s.name, err)
		}
	}()
}

func (s *server) shutdown(ctx context.Context) error {
	if err := s.srv.Shutdown(ctx); err != nil {
		_ = s.srv.Close()
		return fmt.Errorf("%s server shutdown: %w", s.name, err)
	}
	return nil
}
