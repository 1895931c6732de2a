package assemble

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sluice-dev/sluice/config"
)

// ops serves /metrics, /healthz, /readyz, /debug/pprof/ and POST
// /-/reload (and the status page, when set). With a token, all but the
// probes need "Authorization: Bearer <token>" (Prometheus's
// bearer_token); the probes stay open, for orchestrators. A reload
// changes the token.
type ops struct {
	token atomic.Pointer[string]
	mux   *http.ServeMux
}

func newOps(reg *prometheus.Registry, ready func() error, reload func(context.Context) error) *ops {
	o := &ops{mux: http.NewServeMux()}
	o.token.Store(new(string))
	mux := o.mux
	guard := o.bearer
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
	// Prometheus's lifecycle endpoint: reload the configuration file, as
	// SIGHUP does, and answer once it is applied or rejected.
	mux.Handle("POST /-/reload", guard(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := reload(r.Context()); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = fmt.Fprintf(w, "reload rejected; the previous configuration keeps running:\n%v\n", err)
			return
		}
		_, _ = w.Write([]byte("reloaded\n"))
	})))
	return o
}

func (o *ops) ServeHTTP(w http.ResponseWriter, r *http.Request) { o.mux.ServeHTTP(w, r) }

// handle adds a guarded GET route (the status page).
func (o *ops) handle(pattern string, h http.Handler) { o.mux.Handle(pattern, o.bearer(h)) }

// bearer requires the token (when not empty): as a bearer token
// (Prometheus's bearer_token, sluice top), or as the password of HTTP
// Basic authentication with any user name, which a browser asks for on
// the status page; 401 without it, compared in constant time.
func (o *ops) bearer(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token := *o.token.Load()
		if token != "" && !tokenOK(r, token) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="sluice"`)
			w.Header().Add("WWW-Authenticate", `Basic realm="sluice", charset="UTF-8"`)
			http.Error(w, "the admin token is required (admin_token): as a bearer token, or as the password of basic authentication", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func tokenOK(r *http.Request, token string) bool {
	if _, pass, ok := r.BasicAuth(); ok {
		return subtle.ConstantTimeCompare([]byte(pass), []byte(token)) == 1
	}
	return subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), []byte("Bearer "+token)) == 1
}

// opsPath reports whether r is for the operational endpoints rather than
// the Firehose API (which answers on POST /).
func opsPath(r *http.Request) bool {
	p := r.URL.Path
	switch r.Method {
	case http.MethodGet:
		return p == "/metrics" || p == "/healthz" || p == "/readyz" || p == "/status" || p == "/status.json" ||
			strings.HasPrefix(p, "/debug/pprof/")
	case http.MethodPost:
		return p == "/-/reload"
	}
	return false
}

// front is the API listener's handler: the Firehose API, and the
// operational endpoints too while no admin listener is configured.
type front struct {
	api, ops http.Handler
	withOps  atomic.Bool
}

func (f *front) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.withOps.Load() && opsPath(r) {
		f.ops.ServeHTTP(w, r)
		return
	}
	f.api.ServeHTTP(w, r)
}

// server is one HTTP listener with its purpose, for logs. Its TLS
// settings can change while it serves (a reload): every handshake takes
// the current ones.
type server struct {
	name string
	addr string
	tls  bool
	cur  atomic.Pointer[tls.Config]
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
	s := &server{name: name, addr: addr, ln: ln, srv: &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}}
	if tc != nil {
		s.tls = true
		s.cur.Store(tc)
		s.srv.TLSConfig = &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return s.cur.Load(), nil
		}}
	}
	return s, nil
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
