// Command esceiling is the ceiling for Sluice's Elasticsearch destination
// benchmark: a minimal Go _bulk client with nothing but the essential work,
// so that the destination's delivery rate can be compared, in the same run,
// with what the server accepts from the simplest possible client.
//
//	esceiling -url http://127.0.0.1:9428/insert/elasticsearch \
//	    [-file docs.ndjson | -docs 100000 -record-size 1024] \
//	    [-batch 500] [-concurrency 4] [-index bench] [-header 'VL-Msg-Field: note']
//
// Documents are the lines of -file (NDJSON, one JSON object per line, for
// instance what the benchmark script also feeds to Sluice), or, without
// -file, -docs clickstream documents generated exactly as `sluice load
// --payload json --record-size N` generates them (cmd/sluice/load.go
// clickRecord), in the order its -callers callers of -records documents a
// call put them when they take turns: the same documents Sluice delivers
// (the server's work per document depends on their order: its columns
// compress by runs). Each document is sent once as
// {"index":{"_index":INDEX,"_id":"PREFIXSEQ"}} + document, in batches of
// -batch documents per POST URL/_bulk (URL may also end in /_bulk), from
// -concurrency connections. Request bodies are built on the fly by one
// producer goroutine; nothing is compressed, retried or checked beyond
// HTTP 200 and "errors":false. Any failure ends the run with exit status 1:
// the ceiling counts only documents the server acknowledged.
//
// It prints one JSON line: {"docs":N,"seconds":S,"docs_per_sec":R}, the
// time running from the first request until the last answer.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type headers []string

func (h *headers) String() string     { return strings.Join(*h, ", ") }
func (h *headers) Set(v string) error { *h = append(*h, v); return nil }

type config struct {
	url         string
	file        string
	docs        int
	recordSize  int
	callers     int
	perCall     int
	batch       int
	concurrency int
	index       string
	idPrefix    string
	action      string
	headers     http.Header
	timeout     time.Duration
}

type result struct {
	Docs       int64   `json:"docs"`
	Seconds    float64 `json:"seconds"`
	DocsPerSec float64 `json:"docs_per_sec"`
}

func main() {
	var c config
	var hs headers
	flag.StringVar(&c.url, "url", "http://127.0.0.1:9428/insert/elasticsearch", "Elasticsearch base URL (or its /_bulk URL)")
	flag.StringVar(&c.file, "file", "", "NDJSON file of documents, one per line (default: generate -docs documents)")
	flag.IntVar(&c.docs, "docs", 100_000, "documents to generate without -file; with -file, at most this many lines (default: all)")
	flag.IntVar(&c.recordSize, "record-size", 1024, "generated document size in bytes")
	flag.IntVar(&c.callers, "callers", 8, "generated documents: `sluice load` callers taking turns")
	flag.IntVar(&c.perCall, "records", 500, "generated documents: `sluice load` records per call")
	flag.IntVar(&c.batch, "batch", 500, "documents per _bulk request")
	flag.IntVar(&c.concurrency, "concurrency", 4, "concurrent requests")
	flag.StringVar(&c.index, "index", "bench", "_index of every document")
	flag.StringVar(&c.idPrefix, "id-prefix", "doc-", "_id of document SEQ (from 0) is this prefix + SEQ")
	flag.StringVar(&c.action, "action", "index", "bulk action: index | create")
	flag.Var(&hs, "header", "extra request header 'Name: value' (repeatable)")
	flag.DurationVar(&c.timeout, "timeout", 10*time.Minute, "give up after this long")
	flag.Parse()
	if c.file != "" && !isSet("docs") {
		c.docs = 0
	}
	c.headers = http.Header{}
	for _, h := range hs {
		name, value, ok := strings.Cut(h, ":")
		if !ok {
			fmt.Fprintf(os.Stderr, "esceiling: -header %q: want 'Name: value'\n", h)
			os.Exit(2)
		}
		c.headers.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	if c.batch < 1 || c.concurrency < 1 || c.callers < 1 || c.perCall < 1 || (c.action != "index" && c.action != "create") {
		fmt.Fprintln(os.Stderr, "esceiling: -batch, -concurrency, -callers and -records must be positive, -action index or create")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	r, err := run(ctx, c)
	if err != nil {
		fmt.Fprintf(os.Stderr, "esceiling: %v\n", err)
		os.Exit(1)
	}
	out, _ := json.Marshal(r)
	fmt.Println(string(out))
}

func isSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// run sends every document and measures the time.
func run(ctx context.Context, c config) (result, error) {
	url := strings.TrimSuffix(c.url, "/")
	if !strings.HasSuffix(url, "/_bulk") {
		url += "/_bulk"
	}
	next, closeSrc, err := source(c)
	if err != nil {
		return result{}, err
	}
	defer closeSrc()

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	client := &http.Client{Transport: &http.Transport{
		MaxIdleConns:        c.concurrency,
		MaxIdleConnsPerHost: c.concurrency,
		DisableCompression:  true,
	}}
	bodies := make(chan batch, c.concurrency)
	var producerErr error
	go func() {
		defer close(bodies)
		producerErr = produce(ctx, c, next, bodies)
	}()

	var wg sync.WaitGroup
	var acked atomic.Int64
	start := time.Now()
	for range c.concurrency {
		wg.Go(func() {
			for b := range bodies {
				if err := post(ctx, client, url, c.headers, b.body); err != nil {
					cancel(fmt.Errorf("batch of %d documents: %w", b.docs, err))
					return
				}
				acked.Add(int64(b.docs))
			}
		})
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	if err := context.Cause(ctx); err != nil {
		for range bodies { // let the producer finish
		}
		return result{}, err
	}
	if producerErr != nil {
		return result{}, producerErr
	}
	n := acked.Load()
	if n == 0 {
		return result{}, errors.New("no documents")
	}
	return result{Docs: n, Seconds: secs, DocsPerSec: float64(n) / secs}, nil
}

type batch struct {
	body []byte
	docs int
}

// produce builds the request bodies: -batch documents each, with their
// action lines.
func produce(ctx context.Context, c config, next func() ([]byte, error), out chan<- batch) error {
	seq := 0
	action := fmt.Appendf(nil, `{%q:{"_index":%q,"_id":%q`, c.action, c.index, c.idPrefix)
	action = action[:len(action)-1] // reopen the _id string
	for {
		var body bytes.Buffer
		body.Grow(c.batch * (c.recordSize + 64))
		n := 0
		for n < c.batch {
			doc, err := next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
			body.Write(action)
			body.WriteString(strconv.Itoa(seq))
			body.WriteString("\"}}\n")
			body.Write(doc)
			body.WriteByte('\n')
			seq++
			n++
		}
		if n == 0 {
			return nil
		}
		select {
		case out <- batch{body: body.Bytes(), docs: n}:
		case <-ctx.Done():
			return nil
		}
		if n < c.batch {
			return nil
		}
	}
}

// source returns the document iterator: the lines of -file or generated
// click records. next returns io.EOF after the last document.
func source(c config) (next func() ([]byte, error), closeFn func(), err error) {
	if c.file == "" {
		i := 0
		var rec []byte
		return func() ([]byte, error) {
			if i >= c.docs {
				return nil, io.EOF
			}
			// The numbering of `sluice load`: calls of perCall
			// documents, the callers taking turns.
			chunk := i / c.perCall
			rec = clickRecord(rec[:0], chunk%c.callers, chunk/c.callers, i%c.perCall, c.recordSize)
			i++
			return rec, nil
		}, func() {}, nil
	}
	f, err := os.Open(c.file)
	if err != nil {
		return nil, nil, fmt.Errorf("documents: %w", err)
	}
	r := bufio.NewReaderSize(f, 1<<20)
	read := 0
	return func() ([]byte, error) {
		for {
			if c.docs > 0 && read >= c.docs {
				return nil, io.EOF
			}
			line, err := r.ReadBytes('\n')
			line = bytes.TrimRight(line, "\r\n")
			if len(line) > 0 {
				read++
				return line, nil
			}
			if err == io.EOF {
				return nil, io.EOF
			}
			if err != nil {
				return nil, fmt.Errorf("reading %s: %w", c.file, err)
			}
		}
	}, func() { f.Close() }, nil
}

// post sends one _bulk request and checks the answer: HTTP 200 and no item
// errors.
func post(ctx context.Context, client *http.Client, url string, h http.Header, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("reading the answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d: %.500s", resp.StatusCode, answer)
	}
	var head struct {
		Errors *bool `json:"errors"`
	}
	if err := json.Unmarshal(answer, &head); err != nil || head.Errors == nil {
		return fmt.Errorf("not a _bulk answer: %.500s", answer)
	}
	if *head.Errors {
		return fmt.Errorf("item errors: %.500s", answer)
	}
	return nil
}

// clickRecord is cmd/sluice/load.go's generator (copied: commands do not
// import each other): a clickstream JSON object of exactly size bytes.
func clickRecord(dst []byte, caller, call, i, size int) []byte {
	countries := [...]string{"US", "DE", "FR", "JP", "BR", "IN"}
	n := caller*1_000_000 + call*1000 + i
	dst = fmt.Appendf(dst, `{"event_id":"evt-%d-%d-%d","ts":"2026-11-25T09:%02d:%02d.%03dZ","user_id":%d,"country":"%s","amount":%d.%02d,"tags":["promo","mobile"],"device":{"os":"ios","version":"17.4"},"note":"`,
		caller, call, i, (n/60)%60, n%60, n%1000, 1_000_000_000+n, countries[n%len(countries)], n%500, n%100)
	for len(dst) < size-2 {
		dst = append(dst, byte('a'+len(dst)%26))
	}
	return append(dst, `"}`...)
}
