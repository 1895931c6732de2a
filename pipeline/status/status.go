// Package status serves the daemon's status page (/status: plain HTML with
// inline CSS and a small inline script, no external assets) and its data
// (/status.json), which the page reads to refresh itself.
//
// Everything it shows about a stream's traffic comes from the Prometheus
// registry, so its numbers are those of /metrics: counter totals and gauges
// are gathered when a request is answered, and a sampler (Run) gathers the
// registry every Interval and keeps History of samples, from which it
// computes rates (the increase between the last two samples) and the
// sparklines. What the registry cannot say (a stream's source, destination
// type, readiness reason, last error) comes from Options.Streams.
package status

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Stream is what the page shows about a stream besides its metrics.
type Stream struct {
	Name        string
	Source      string // "DirectPut" or "kinesis"
	Destination string // destination type, e.g. "http_endpoint"
	ErrorOutput string // e.g. "file", or "the destination"
	Ready       string // "" when ready, else the reason
	LastError   string // the runner's last delivery error, "" if none
	LastErrorAt time.Time
}

// Options configure a Page.
type Options struct {
	Gatherer prometheus.Gatherer
	Streams  func() []Stream // the current streams (the set changes on config reload)
	Version  string
	Started  time.Time
	Interval time.Duration // sampling; default 5 s
	History  time.Duration // sparkline window; default 10 min
	Logger   *slog.Logger
}

// Defaults of Options.
const (
	DefaultInterval = 5 * time.Second
	DefaultHistory  = 10 * time.Minute
)

// Page is the status page and its sampler. Its methods are safe for
// concurrent use.
type Page struct {
	o    Options
	log  *slog.Logger
	tmpl *template.Template
	keep int // samples kept: History/Interval + 1

	mu      sync.Mutex
	ring    []*sample // oldest first
	lastErr string    // the last gather error logged
}

// New returns a page reading o.Gatherer.
func New(o Options) (*Page, error) {
	if o.Gatherer == nil {
		return nil, errors.New("status page: a Gatherer is required")
	}
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.History <= 0 {
		o.History = DefaultHistory
	}
	if o.History < o.Interval {
		return nil, fmt.Errorf("status page: history %v is shorter than the sampling interval %v", o.History, o.Interval)
	}
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	tmpl, err := parseTemplate()
	if err != nil {
		return nil, fmt.Errorf("status page: %w", err)
	}
	return &Page{o: o, log: log, tmpl: tmpl, keep: int(o.History/o.Interval) + 1}, nil
}

// Run samples the registry at once and then every Interval until ctx is
// done.
func (p *Page) Run(ctx context.Context) {
	t := time.NewTicker(p.o.Interval)
	defer t.Stop()
	for {
		p.sample(time.Now())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sample gathers the registry into the ring.
func (p *Page) sample(now time.Time) {
	s := p.gather(now)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ring = append(p.ring, s)
	if over := len(p.ring) - p.keep; over > 0 {
		clear(p.ring[:over])
		p.ring = p.ring[over:]
	}
}

// gather reads the registry. A partial gather (some collector failed) is
// used for what it has; its error is logged when it changes.
func (p *Page) gather(now time.Time) *sample {
	mfs, err := p.o.Gatherer.Gather()
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	p.mu.Lock()
	changed := msg != p.lastErr
	p.lastErr = msg
	p.mu.Unlock()
	if changed && err != nil {
		p.log.Warn("status page: gathering metrics", "err", err)
	}
	return parse(now, mfs)
}

// Snapshot returns what /status.json would answer now.
func (p *Page) Snapshot() Snapshot {
	cur := p.gather(time.Now())
	p.mu.Lock()
	ring := append([]*sample(nil), p.ring...)
	p.mu.Unlock()
	return p.snapshot(cur, ring)
}

// ServeHTTP serves GET /status and GET /status.json (by r.URL.Path).
func (p *Page) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var page bool
	switch {
	case strings.HasSuffix(r.URL.Path, "/status.json"):
	case strings.HasSuffix(r.URL.Path, "/status"), strings.HasSuffix(r.URL.Path, "/status/"):
		page = true
	default:
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	snap := p.Snapshot()
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if !page {
		b, err := json.Marshal(snap)
		if err != nil {
			p.log.Error("status page: encoding the snapshot", "err", err)
			http.Error(w, "encoding the status failed", http.StatusInternalServerError)
			return
		}
		h.Set("Content-Type", "application/json")
		_, _ = w.Write(append(b, '\n'))
		return
	}
	nonce, err := newNonce()
	if err != nil {
		p.log.Error("status page: nonce", "err", err)
		http.Error(w, "status page unavailable", http.StatusInternalServerError)
		return
	}
	var buf bytes.Buffer
	if err := p.render(&buf, snap, nonce); err != nil {
		p.log.Error("status page: rendering", "err", err)
		http.Error(w, "rendering the status page failed", http.StatusInternalServerError)
		return
	}
	// Only this response's own inline script and style may run, and the
	// script may only fetch from this origin.
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'nonce-"+nonce+"'; style-src 'nonce-"+nonce+
		"'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(buf.Bytes())
}

func newNonce() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random nonce: %w", err)
	}
	// The URL alphabet, which CSP's nonce grammar allows: the template
	// escapes a '+' in the attribute (a browser decodes it, a test of the
	// raw text does not).
	return base64.RawURLEncoding.EncodeToString(b), nil
}
