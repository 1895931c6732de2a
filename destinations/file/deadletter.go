package file

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"

	"github.com/sluice-dev/sluice/destinations/format/prefix"
	"github.com/sluice-dev/sluice/pipeline"
)

// DefaultOutputType is the error-output-type of dead letters that have none.
const DefaultOutputType = "delivery-failed"

var outputTypeRE = regexp.MustCompile(`^[a-zA-Z0-9_-][a-zA-Z0-9_.-]{0,127}$`)

// errorRecord is Firehose's error-record JSON shape (processing-failed and
// http-endpoint-failed outputs). Timestamps are epoch milliseconds; rawData
// is the base64 of the record's bytes.
type errorRecord struct {
	AttemptsMade           int    `json:"attemptsMade"`
	ArrivalTimestamp       int64  `json:"arrivalTimestamp"`
	ErrorCode              string `json:"errorCode"`
	ErrorMessage           string `json:"errorMessage"`
	AttemptEndingTimestamp int64  `json:"attemptEndingTimestamp"`
	RawData                string `json:"rawData"`
}

// WriteDeadLetters writes dls, grouped by output type, as one
// newline-delimited JSON object per output type under the evaluated
// error_output_prefix (<error_output_prefix><output-type>/yyyy/MM/dd/HH/
// for a plain one). Object names derive
// from stream, output type and id, so writing the dead letters of a batch
// again replaces them. Dead-letter objects are never compressed.
func (d *Destination) WriteDeadLetters(ctx context.Context, id pipeline.BatchID, stream string, dls []pipeline.DeadLetter) error {
	d.closeMu.RLock()
	defer d.closeMu.RUnlock()
	if d.closed {
		return fmt.Errorf("file destination %s: write dead letters: %w", d.stream, pipeline.ErrClosed)
	}
	if !streamNameRE.MatchString(stream) {
		return fmt.Errorf("file destination %s: write dead letters: invalid stream name %q", d.stream, stream)
	}
	groups := map[string][]int{}
	for i := range dls {
		t := dls[i].OutputType
		if t == "" {
			t = DefaultOutputType
		}
		if !outputTypeRE.MatchString(t) {
			return fmt.Errorf("file destination %s: write dead letters: invalid output type %q", d.stream, t)
		}
		groups[t] = append(groups[t], i)
	}
	types := make([]string, 0, len(groups))
	for t := range groups {
		types = append(types, t)
	}
	slices.Sort(types)
	ending := d.now().UnixMilli()
	for _, t := range types {
		idx := groups[t]
		oldest := dls[idx[0]].Record.Arrived
		for _, i := range idx[1:] {
			if a := dls[i].Record.Arrived; a.Before(oldest) {
				oldest = a
			}
		}
		seed := prefix.ObjectSeed(stream, "dead-letters/"+t, id, "")
		dir, err := d.spec.ErrorKey(t, prefix.Values{Time: oldest, Seed: seed})
		if err != nil {
			return fmt.Errorf("file destination %s: write %d dead letters (%s): %w", d.stream, len(idx), t, err)
		}
		// Dead-letter objects are never compressed: no data extension.
		key := dir + strings.TrimSuffix(d.spec.ObjectName(stream, oldest, prefix.ObjectUUID(seed)), d.spec.Ext())
		err = d.writeObject(ctx, key, uncompressed, func(w io.Writer) error {
			enc := json.NewEncoder(w)
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
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("file destination %s: write %d dead letters (%s): %w", d.stream, len(idx), t, err)
		}
	}
	return nil
}
