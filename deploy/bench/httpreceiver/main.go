// Command httpreceiver is a Firehose HTTP endpoint for the benchmark
// scripts:
//
//	httpreceiver -addr 127.0.0.1:4580 [-delay 20ms] [-access-key KEY] [-check]
//
// By default it is cheap, as a receiver on another machine would be to the
// sender: it reads each body (gunzipping it when sent so), checks that the
// body's requestId is the X-Amz-Firehose-Request-Id header, counts the
// records by their "data" members without decoding them, and answers 200
// with {"requestId","timestamp"} after -delay. The benchmarks run it on the
// same cores as the daemon, where the full check of every record (base64,
// JSON) would measure the receiver instead of the sender. With -check it
// runs the test receiver of deploy/testpeers/receiver instead, which
// checks every request against the specification.
//
// GET /stats answers the counts as JSON ({"requests","accepted","records",
// "uniqueRecords","bytes","rejected"}, bytes counting request bodies when
// not checking); on SIGTERM or SIGINT it prints the
// same line to stdout and exits.
package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/sluice-dev/sluice/deploy/testpeers/receiver"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:4580", "listen address")
	delay := flag.Duration("delay", 0, "wait this long before answering each request")
	key := flag.String("access-key", "", "require this X-Amz-Firehose-Access-Key (default: none)")
	check := flag.Bool("check", false, "check every request fully (the test receiver) instead of counting")
	flag.Parse()

	var stats func() any
	var stop func() error
	if *check {
		r, err := receiver.Start(receiver.Config{Addr: *addr, AccessKey: *key, CountOnly: true})
		if err != nil {
			log.Fatal(err)
		}
		if *delay > 0 {
			r.SetBehaviour(receiver.Behaviour{Delay: *delay})
		}
		stats, stop = func() any { return r.Stats() }, r.Close
		fmt.Fprintf(os.Stderr, "httpreceiver: checking every request on %s\n", r.URL())
	} else {
		c := &counter{delay: *delay, key: *key, seen: map[string]bool{}}
		ln, err := net.Listen("tcp", *addr)
		if err != nil {
			log.Fatal(err)
		}
		srv := &http.Server{Handler: c, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		stats, stop = func() any { return c.snapshot() }, srv.Close
		fmt.Fprintf(os.Stderr, "httpreceiver: counting on http://%s/\n", ln.Addr())
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	if err := stop(); err != nil {
		log.Print(err)
	}
	out, _ := json.Marshal(stats())
	fmt.Println(string(out))
}

// counter is the cheap receiver.
type counter struct {
	delay time.Duration
	key   string

	mu    sync.Mutex
	seen  map[string]bool
	stats receiver.Stats
}

var dataMember = []byte(`{"data":`)

func (c *counter) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method == http.MethodGet && req.URL.Path == "/stats" {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(c.snapshot())
		return
	}
	id := req.Header.Get(receiver.HeaderRequestID)
	var body io.Reader = req.Body
	if req.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(req.Body)
		if err != nil {
			c.reject(w, id, "gzip: "+err.Error())
			return
		}
		body = zr
	}
	b, err := io.ReadAll(io.LimitReader(body, receiver.MaxBodyBytes+1))
	switch {
	case err != nil:
		c.reject(w, id, "read: "+err.Error())
		return
	case len(b) > receiver.MaxBodyBytes:
		c.reject(w, id, "body over 64 MiB")
		return
	case c.key != "" && req.Header.Get(receiver.HeaderAccessKey) != c.key:
		c.reject(w, id, "wrong access key")
		return
	case id == "" || !bytes.Contains(b[:min(len(b), 256)], []byte(`"requestId":"`+id+`"`)):
		c.reject(w, id, "requestId does not match the header")
		return
	}
	n := int64(bytes.Count(b, dataMember))
	if c.delay > 0 {
		time.Sleep(c.delay)
	}
	c.mu.Lock()
	c.stats.Requests++
	c.stats.Accepted++
	c.stats.Records += n
	c.stats.Bytes += int64(len(b))
	if !c.seen[id] {
		c.seen[id] = true
		c.stats.UniqueRecords += n
	}
	c.mu.Unlock()
	answer(w, http.StatusOK, id, "")
}

func (c *counter) reject(w http.ResponseWriter, id, msg string) {
	c.mu.Lock()
	c.stats.Requests++
	c.stats.Rejected++
	c.mu.Unlock()
	answer(w, http.StatusBadRequest, id, msg)
}

func (c *counter) snapshot() receiver.Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

func answer(w http.ResponseWriter, status int, id, msg string) {
	out := map[string]any{"requestId": id, "timestamp": time.Now().UnixMilli()}
	if msg != "" {
		out["errorMessage"] = msg
	}
	b, _ := json.Marshal(out)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
