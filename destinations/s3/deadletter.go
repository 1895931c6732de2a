package s3

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/destinations/format/prefix"
	"github.com/sluice-dev/sluice/pipeline"
)

// DefaultOutputType is the error-output-type of dead letters that have none.
const DefaultOutputType = "delivery-failed"

var outputTypeRE = regexp.MustCompile(`^[a-zA-Z0-9_-][a-zA-Z0-9_.-]{0,127}$`)

// errorRecord is Firehose's error-record JSON shape, the same fields as the
// file destination writes. Timestamps are epoch milliseconds; rawData is
// the base64 of the record's bytes.
type errorRecord struct {
	AttemptsMade           int    `json:"attemptsMade"`
	ArrivalTimestamp       int64  `json:"arrivalTimestamp"`
	ErrorCode              string `json:"errorCode"`
	ErrorMessage           string `json:"errorMessage"`
	AttemptEndingTimestamp int64  `json:"attemptEndingTimestamp"`
	RawData                string `json:"rawData"`
}

// deadLetterMeta is the metadata of dead-letter objects: uncompressed
// newline-delimited JSON, with the destination's encryption and storage
// class.
func (d *Destination) deadLetterMeta() objectMeta {
	m := d.meta
	m.contentType = "application/x-ndjson"
	m.contentEncoding = ""
	return m
}

// WriteDeadLetters writes dls, grouped by output type, as one object of
// newline-delimited Firehose error-record JSON per output type, in the
// destination's bucket under the error output prefix (see
// DeadLetterKey). Keys derive from the stream, the output type and id, so
// writing the dead letters of a batch again replaces them.
func (d *Destination) WriteDeadLetters(ctx context.Context, id pipeline.BatchID, stream string, dls []pipeline.DeadLetter) error {
	if err := d.begin("write dead letters"); err != nil {
		return err
	}
	defer d.inflight.Done()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("s3 destination %s: write dead letters: %w", d.stream, err)
	}
	if !streamNameRE.MatchString(stream) {
		return fmt.Errorf("s3 destination %s: write dead letters: invalid stream name %q", d.stream, stream)
	}
	groups := map[string][]int{}
	for i := range dls {
		t := dls[i].OutputType
		if t == "" {
			t = DefaultOutputType
		}
		if !outputTypeRE.MatchString(t) {
			return fmt.Errorf("s3 destination %s: write dead letters: invalid output type %q", d.stream, t)
		}
		groups[t] = append(groups[t], i)
	}
	types := make([]string, 0, len(groups))
	for t := range groups {
		types = append(types, t)
	}
	slices.Sort(types)
	ending := d.now().UnixMilli()
	meta := d.deadLetterMeta()
	for _, t := range types {
		idx := groups[t]
		oldest := dls[idx[0]].Record.Arrived
		size := 0
		for _, i := range idx {
			if a := dls[i].Record.Arrived; a.Before(oldest) {
				oldest = a
			}
			size += 200 + len(dls[i].Message) + len(dls[i].Record.Data)*4/3
		}
		key, err := d.DeadLetterKey(stream, t, oldest, id)
		if err != nil {
			return fmt.Errorf("s3 destination %s: write %d dead letters (%s): %w", d.stream, len(idx), t, err)
		}
		if err := d.writeDeadLetterObject(ctx, key, meta, size, dls, idx, ending); err != nil {
			return err
		}
	}
	return nil
}

// DeadLetterKey is the key of the dead letters of type outputType of
// batch id whose oldest record arrived at oldest: the evaluated
// error_output_prefix (<error_output_prefix><output-type>/yyyy/MM/dd/HH/
// when plain) and <stream>-1-<time>-<uuid>, without extension (dead
// letters are uncompressed JSON lines).
func (d *Destination) DeadLetterKey(stream, outputType string, oldest time.Time, id pipeline.BatchID) (string, error) {
	seed := prefix.ObjectSeed(stream, "dead-letters/"+outputType, id, "")
	dir, err := d.spec.ErrorKey(outputType, prefix.Values{Time: oldest, Seed: seed})
	if err != nil {
		return "", err
	}
	return dir + strings.TrimSuffix(d.spec.ObjectName(stream, oldest, prefix.ObjectUUID(seed)), d.spec.Ext()), nil
}

func (d *Destination) writeDeadLetterObject(ctx context.Context, key string, meta objectMeta, size int, dls []pipeline.DeadLetter, idx []int, ending int64) (err error) {
	up := d.newUpload(ctx, key, meta, size)
	defer up.release()
	defer func() {
		if err != nil {
			up.abort()
		}
	}()
	enc := json.NewEncoder(up)
	enc.SetEscapeHTML(false)
	for _, i := range idx {
		dl := &dls[i]
		if err := enc.Encode(errorRecord{
			AttemptsMade:           dl.Attempts,
			ArrivalTimestamp:       dl.Record.Arrived.UnixMilli(),
			ErrorCode:              dl.Code,
			ErrorMessage:           dl.Message,
			AttemptEndingTimestamp: ending,
			RawData:                base64.StdEncoding.EncodeToString(dl.Record.Data),
		}); err != nil {
			if uerr := up.err(); uerr != nil {
				return uerr
			}
			return fmt.Errorf("s3 destination %s: encode dead letters s3://%s/%s: %w", d.stream, d.bucket, key, err)
		}
	}
	return up.finish()
}
