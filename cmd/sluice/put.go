package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/sluice-dev/sluice/pipeline"
)

// cmdPut sends newline-delimited records from stdin (or --file) to a
// stream with PutRecordBatch, resending only the entries that failed (as
// Firehose's docs tell producers to), with backoff.
func cmdPut(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("put", flag.ContinueOnError)
	fs.SetOutput(stderr)
	endpoint := fs.String("endpoint", "http://127.0.0.1:4573", "Firehose endpoint URL")
	stream := fs.String("stream", "", "delivery stream name (required)")
	file := fs.String("file", "-", "newline-delimited records; - is standard input")
	batch := fs.Int("batch", 500, "records per PutRecordBatch call (1..500)")
	attempts := fs.Int("attempts", 8, "attempts per record before giving up")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *stream == "" || *batch < 1 || *batch > 500 || *attempts < 1 {
		fmt.Fprintln(stderr, "sluice put: --stream is required; 1 <= --batch <= 500; --attempts >= 1")
		return 2
	}
	in := stdin
	if *file != "-" {
		f, err := os.Open(*file)
		if err != nil {
			return exitCode(err, stderr)
		}
		defer f.Close()
		in = f
	}
	p := &putter{client: &http.Client{Timeout: 30 * time.Second}, endpoint: *endpoint, stream: *stream, attempts: *attempts}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 1<<20+1)
	var pending [][]byte
	for sc.Scan() {
		pending = append(pending, bytes.Clone(sc.Bytes()))
		if len(pending) == *batch {
			if err := p.send(ctx, pending); err != nil {
				return exitCode(err, stderr)
			}
			pending = pending[:0]
		}
	}
	if err := sc.Err(); err != nil {
		return exitCode(fmt.Errorf("reading records: %w", err), stderr)
	}
	if len(pending) > 0 {
		if err := p.send(ctx, pending); err != nil {
			return exitCode(err, stderr)
		}
	}
	fmt.Fprintf(stdout, "%d records put to %s, %d failed\n", p.ok, *stream, p.failed)
	if p.failed > 0 {
		return 1
	}
	return 0
}

type putter struct {
	client   *http.Client
	endpoint string
	stream   string
	attempts int
	ok       int
	failed   int
}

// send puts recs, resending failed entries with exponential backoff.
func (p *putter) send(ctx context.Context, recs [][]byte) error {
	backoff := 100 * time.Millisecond
	for attempt := 1; len(recs) > 0; attempt++ {
		failed, lastErr, err := p.putBatch(ctx, recs)
		if err != nil {
			return err
		}
		p.ok += len(recs) - len(failed)
		recs = failed
		if len(recs) == 0 {
			return nil
		}
		if attempt == p.attempts {
			p.failed += len(recs)
			fmt.Fprintf(os.Stderr, "sluice put: giving up on %d records: %s\n", len(recs), lastErr)
			return nil
		}
		if err := pipeline.Sleep(ctx, backoff); err != nil {
			return err
		}
		backoff = min(2*backoff, 5*time.Second)
	}
	return nil
}

// putBatch sends one call and returns the records that failed.
func (p *putter) putBatch(ctx context.Context, recs [][]byte) (failed [][]byte, lastErr string, err error) {
	type entry struct {
		Data string `json:"Data"`
	}
	req := struct {
		DeliveryStreamName string  `json:"DeliveryStreamName"`
		Records            []entry `json:"Records"`
	}{DeliveryStreamName: p.stream, Records: make([]entry, len(recs))}
	for i, r := range recs {
		req.Records[i].Data = base64.StdEncoding.EncodeToString(r)
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, "", err
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, p.endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, "", err
	}
	hr.Header.Set("Content-Type", "application/x-amz-json-1.1")
	hr.Header.Set("X-Amz-Target", "Firehose_20150804.PutRecordBatch")
	resp, err := p.client.Do(hr)
	if err != nil {
		return recs, err.Error(), nil // retry the whole call
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return recs, err.Error(), nil
	}
	if resp.StatusCode >= 500 {
		return recs, fmt.Sprintf("HTTP %d: %s", resp.StatusCode, out), nil
	}
	if resp.StatusCode != http.StatusOK {
		return nil, "", fmt.Errorf("PutRecordBatch to %s: HTTP %d: %s", p.stream, resp.StatusCode, bytes.TrimSpace(out))
	}
	var res struct {
		RequestResponses []struct{ RecordId, ErrorCode, ErrorMessage string }
	}
	if err := json.Unmarshal(out, &res); err != nil || len(res.RequestResponses) != len(recs) {
		return nil, "", fmt.Errorf("PutRecordBatch: unexpected response: %.300s", out)
	}
	for i, r := range res.RequestResponses {
		if r.ErrorCode != "" {
			failed = append(failed, recs[i])
			lastErr = r.ErrorCode + ": " + r.ErrorMessage
		}
	}
	return failed, lastErr, nil
}
