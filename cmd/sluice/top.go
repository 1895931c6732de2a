package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// cmdTop shows the daemon's streams in the terminal, from the status
// page's data (/status.json): one table with --once, else a table redrawn
// every --interval (cleared with ANSI codes on a terminal, printed again
// otherwise) until interrupted.
func cmdTop(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("top", flag.ContinueOnError)
	fs.SetOutput(stderr)
	endpoint := fs.String("endpoint", "http://127.0.0.1:4573", "the daemon's admin_listen URL, or its API URL when it has none")
	token := fs.String("admin-token", "", "bearer token when the daemon has an admin_token (default $SLUICE_ADMIN_TOKEN)")
	interval := fs.Duration("interval", 2*time.Second, "time between refreshes")
	once := fs.Bool("once", false, "print one table and exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 || *interval <= 0 {
		fmt.Fprintln(stderr, "sluice top: no arguments; --interval must be positive")
		return 2
	}
	t := &topper{
		client: &http.Client{Timeout: 10 * time.Second},
		url:    statusURL(*endpoint),
		token:  *token,
	}
	if t.token == "" {
		t.token = os.Getenv("SLUICE_ADMIN_TOKEN")
	}
	tty := isTerminal(stdout)
	if *once {
		doc, err := t.fetch(ctx)
		if err != nil {
			return exitCode(err, stderr)
		}
		renderTop(stdout, doc, t.url, false)
		return 0
	}
	tick := time.NewTicker(*interval)
	defer tick.Stop()
	for {
		doc, err := t.fetch(ctx)
		switch {
		case errors.Is(err, context.Canceled) || ctx.Err() != nil:
			return 0
		case err != nil:
			if tty {
				fmt.Fprint(stdout, clearScreen)
			}
			fmt.Fprintf(stdout, "sluice top: %v (trying again every %v)\n\n", err, *interval)
		default:
			renderTop(stdout, doc, t.url, tty)
		}
		select {
		case <-ctx.Done():
			return 0
		case <-tick.C:
		}
	}
}

const clearScreen = "\x1b[H\x1b[2J"

// statusURL is where the status data is, from an endpoint URL (a bare
// host:port is taken as http).
func statusURL(endpoint string) string {
	if !strings.Contains(endpoint, "://") {
		endpoint = "http://" + endpoint
	}
	if strings.HasSuffix(endpoint, "/status.json") {
		return endpoint
	}
	return strings.TrimRight(endpoint, "/") + "/status.json"
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

type topper struct {
	client *http.Client
	url    string
	token  string
}

// topDoc is the part of /status.json (pipeline/status.Snapshot) that top
// shows.
type topDoc struct {
	Version       string    `json:"version"`
	Now           time.Time `json:"now"`
	UptimeSeconds float64   `json:"uptime_seconds"`
	Reloads       *struct {
		SuccessTotal   float64 `json:"success_total"`
		FailureTotal   float64 `json:"failure_total"`
		LastSuccessful *bool   `json:"last_successful"`
	} `json:"reloads"`
	Streams []topStream `json:"streams"`
}

type topStream struct {
	Name              string   `json:"name"`
	Ready             bool     `json:"ready"`
	NotReady          string   `json:"not_ready_reason"`
	Incoming          topFlow  `json:"incoming"`
	Delivered         topFlow  `json:"delivered"`
	BacklogBytes      *float64 `json:"backlog_bytes"`
	BacklogAgeSeconds *float64 `json:"backlog_age_seconds"`
	InFlightBatches   *float64 `json:"in_flight_batches"`
	DeadLetters       struct {
		Total     float64  `json:"total"`
		PerSecond *float64 `json:"per_second"`
	} `json:"dead_letters"`
}

type topFlow struct {
	RecordsPerSecond *float64 `json:"records_per_second"`
	BytesPerSecond   *float64 `json:"bytes_per_second"`
}

func (t *topper) fetch(ctx context.Context) (*topDoc, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.url, nil)
	if err != nil {
		return nil, fmt.Errorf("status URL: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	if t.token != "" {
		req.Header.Set("Authorization", "Bearer "+t.token)
	}
	resp, err := t.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", t.url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("GET %s: reading the answer: %w", t.url, err)
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		return nil, fmt.Errorf("GET %s: %s: the daemon has an admin_token: give it with --admin-token or SLUICE_ADMIN_TOKEN", t.url, resp.Status)
	case resp.StatusCode == http.StatusNotFound:
		return nil, fmt.Errorf("GET %s: %s: no status page there (is --endpoint the daemon's admin_listen, or its API address without one?)", t.url, resp.Status)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("GET %s: %s: %s", t.url, resp.Status, sanitize(strings.TrimSpace(strings.SplitN(string(body), "\n", 2)[0]), 200))
	}
	var doc topDoc
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("GET %s: not the status page's JSON: %w", t.url, err)
	}
	return &doc, nil
}

// renderTop writes one frame: a header line and the streams' table.
func renderTop(w io.Writer, doc *topDoc, url string, tty bool) {
	var b strings.Builder
	if tty {
		b.WriteString(clearScreen)
	}
	fmt.Fprintf(&b, "sluice %s  up %s  %d streams", sanitize(doc.Version, 40), topSeconds(&doc.UptimeSeconds), len(doc.Streams))
	if r := doc.Reloads; r != nil {
		fmt.Fprintf(&b, "  reloads %s ok, %s failed", topCount(r.SuccessTotal), topCount(r.FailureTotal))
		if r.LastSuccessful != nil && !*r.LastSuccessful {
			b.WriteString(" (last one failed)")
		}
	}
	fmt.Fprintf(&b, "  %s  %s\n\n", sanitize(url, 100), doc.Now.UTC().Format("2006-01-02 15:04:05 UTC"))
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STREAM\tIN/S\tIN B/S\tOUT/S\tOUT B/S\tBACKLOG\tAGE\tIN-FLIGHT\tDEAD LETTERS\tREADY")
	for _, s := range doc.Streams {
		ready := "ready"
		if !s.Ready {
			ready = "NOT READY: " + sanitize(s.NotReady, 80)
		}
		dead := topCount(s.DeadLetters.Total)
		if r := s.DeadLetters.PerSecond; r != nil && *r > 0 {
			dead += " (" + topRate(r) + "/s)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", sanitize(s.Name, 64),
			topRate(s.Incoming.RecordsPerSecond), topBytes(s.Incoming.BytesPerSecond),
			topRate(s.Delivered.RecordsPerSecond), topBytes(s.Delivered.BytesPerSecond),
			topBytes(s.BacklogBytes), topSeconds(s.BacklogAgeSeconds), topGauge(s.InFlightBatches), dead, ready)
	}
	if len(doc.Streams) == 0 {
		fmt.Fprintln(tw, "(no streams)")
	}
	tw.Flush()
	if !tty {
		b.WriteString("\n")
	}
	_, _ = io.WriteString(w, b.String())
}

// sanitize keeps a string from the daemon (a stream name, an error) from
// driving the terminal: control characters become '?'; it is cut at max
// runes.
func sanitize(s string, maxRunes int) string {
	var b strings.Builder
	n := 0
	for _, r := range s {
		if n == maxRunes {
			b.WriteString("…")
			break
		}
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\t' {
			r = '?'
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}

const topNone = "-"

func topRate(v *float64) string {
	if v == nil {
		return topNone
	}
	return strconv.FormatFloat(*v, 'f', 1, 64)
}

func topGauge(v *float64) string {
	if v == nil {
		return topNone
	}
	return topCount(*v)
}

func topCount(v float64) string { return strconv.FormatFloat(math.Round(v), 'f', 0, 64) }

func topBytes(v *float64) string {
	if v == nil {
		return topNone
	}
	f := *v
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for math.Abs(f) >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	if i == 0 {
		return strconv.FormatFloat(f, 'f', 0, 64) + " B"
	}
	return strconv.FormatFloat(f, 'f', 1, 64) + " " + units[i]
}

func topSeconds(v *float64) string {
	if v == nil {
		return topNone
	}
	f := *v
	s := int64(math.Floor(f))
	switch {
	case f < 60:
		return strconv.FormatFloat(f, 'f', 1, 64) + "s"
	case f < 3600:
		return fmt.Sprintf("%dm%02ds", s/60, s%60)
	case f < 86400:
		return fmt.Sprintf("%dh%02dm", s/3600, s%3600/60)
	default:
		return fmt.Sprintf("%dd%02dh", s/86400, s%86400/3600)
	}
}
