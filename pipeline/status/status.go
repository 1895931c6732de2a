// Package status serves the daemon's status page (/status, plain HTML with
// an inline script) and its data (/status.json). Everything it shows about
// a stream's traffic comes from the Prometheus registry, so the page's
// numbers are those of /metrics: a sampler (Run) gathers the registry every
// Interval and keeps History of samples, from which it computes rates and
// sparklines.
package status

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
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

// Page is the status page and its sampler.
type Page struct {
	o Options
}

// New returns a page reading o.Gatherer.
func New(o Options) (*Page, error) {
	if o.Gatherer == nil {
		return nil, errors.New("status: a Gatherer is required")
	}
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.History <= 0 {
		o.History = DefaultHistory
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Page{o: o}, nil
}

// Run samples the registry every Interval until ctx is done.
func (p *Page) Run(ctx context.Context) {
	<-ctx.Done()
}

// ServeHTTP serves GET /status and GET /status.json (by r.URL.Path).
func (p *Page) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	http.NotFound(w, r)
}
