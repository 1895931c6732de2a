// Command refserver is the reference point for Sluice's ingest benchmark: a
// minimal Go PutRecordBatch server with nothing but the essential work, so
// that Sluice's numbers can be compared with the machine's own ceiling in the
// same run (deploy/bench/run.sh).
//
//	-mode discard   find each Data string, base64-decode it, discard it
//	-mode stdjson   decode the body with encoding/json, then discard
//	-mode fsync     like discard, then append the records to one file with
//	                one fsync per group of concurrent requests (the
//	                durability ceiling: what any durable ingest must pay)
//
// It answers every record with a RecordId and FailedPutCount 0; it does no
// validation and is not a Firehose implementation.
package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"strconv"
	"sync"
)

func main() {
	mode := flag.String("mode", "discard", "discard | stdjson | fsync")
	listen := flag.String("listen", "127.0.0.1:4599", "listen address")
	file := flag.String("file", "refserver.log", "append file for -mode fsync")
	flag.Parse()

	var gc *groupCommit
	if *mode == "fsync" {
		f, err := os.OpenFile(*file, os.O_CREATE|os.O_WRONLY|os.O_TRUNC|os.O_APPEND, 0o644)
		if err != nil {
			log.Fatal(err)
		}
		gc = newGroupCommit(f)
	}
	pool := sync.Pool{New: func() any { return new(bytes.Buffer) }}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		body := pool.Get().(*bytes.Buffer)
		body.Reset()
		defer pool.Put(body)
		if _, err := body.ReadFrom(r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var n int
		var out []byte
		switch *mode {
		case "stdjson":
			var req struct {
				DeliveryStreamName string
				Records            []struct{ Data []byte }
			}
			if err := json.Unmarshal(body.Bytes(), &req); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			n = len(req.Records)
		default:
			var err error
			n, out, err = decodeData(body.Bytes(), gc != nil)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
		}
		if gc != nil {
			if err := gc.append(out); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
		}
		resp := make([]byte, 0, 64+n*40)
		resp = append(resp, `{"FailedPutCount":0,"Encrypted":false,"RequestResponses":[`...)
		for i := range n {
			if i > 0 {
				resp = append(resp, ',')
			}
			resp = append(resp, `{"RecordId":"`...)
			resp = strconv.AppendInt(resp, int64(i), 10)
			resp = append(resp, `"}`...)
		}
		resp = append(resp, "]}"...)
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		_, _ = w.Write(resp)
	})
	fmt.Fprintf(os.Stderr, "refserver mode=%s listening on %s\n", *mode, *listen)
	log.Fatal(http.ListenAndServe(*listen, nil))
}

// decodeData finds every "Data":"..." value and base64-decodes it; with keep
// it returns the decoded records length-prefixed in one buffer.
func decodeData(body []byte, keep bool) (int, []byte, error) {
	key := []byte(`"Data":"`)
	var out []byte
	dst := make([]byte, 0, 4096)
	n := 0
	for {
		i := bytes.Index(body, key)
		if i < 0 {
			return n, out, nil
		}
		body = body[i+len(key):]
		j := bytes.IndexByte(body, '"')
		if j < 0 {
			return n, out, fmt.Errorf("unterminated string")
		}
		src := body[:j]
		need := base64.StdEncoding.DecodedLen(len(src))
		if cap(dst) < need {
			dst = make([]byte, need)
		}
		m, err := base64.StdEncoding.Decode(dst[:need], src)
		if err != nil {
			return n, out, err
		}
		if keep {
			out = append(out, byte(m>>24), byte(m>>16), byte(m>>8), byte(m))
			out = append(out, dst[:m]...)
		}
		body = body[j+1:]
		n++
	}
}

// groupCommit appends buffers to a file; concurrent appends are gathered by
// one writer and made durable with one fsync per group.
type groupCommit struct {
	f    *os.File
	reqs chan gcReq
}

type gcReq struct {
	data []byte
	done chan error
}

func newGroupCommit(f *os.File) *groupCommit {
	g := &groupCommit{f: f, reqs: make(chan gcReq, 64)}
	go g.loop()
	return g
}

func (g *groupCommit) append(b []byte) error {
	done := make(chan error, 1)
	g.reqs <- gcReq{data: b, done: done}
	return <-done
}

func (g *groupCommit) loop() {
	var buf []byte
	for r := range g.reqs {
		group := []gcReq{r}
	gather:
		for {
			select {
			case r2 := <-g.reqs:
				group = append(group, r2)
			default:
				break gather
			}
		}
		buf = buf[:0]
		for _, q := range group {
			buf = append(buf, q.data...)
		}
		_, err := g.f.Write(buf)
		if err == nil {
			err = g.f.Sync()
		}
		for _, q := range group {
			q.done <- err
		}
	}
}
