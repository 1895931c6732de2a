package object

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"slices"
	"time"

	"github.com/sluice-dev/sluice/pipeline"
)

var outputTypeRE = regexp.MustCompile(`^[a-zA-Z0-9_-][a-zA-Z0-9_.-]{0,127}$`)

// ErrorRecord is Firehose's error-record JSON shape (the processing-failed
// and http-endpoint-failed outputs). Timestamps are epoch milliseconds;
// rawData is the base64 of the record's bytes.
type ErrorRecord struct {
	AttemptsMade           int    `json:"attemptsMade"`
	ArrivalTimestamp       int64  `json:"arrivalTimestamp"`
	ErrorCode              string `json:"errorCode"`
	ErrorMessage           string `json:"errorMessage"`
	AttemptEndingTimestamp int64  `json:"attemptEndingTimestamp"`
	RawData                string `json:"rawData"`
}

// deadLetterGroup is the dead letters of one error output type in a batch:
// they go to one object.
type deadLetterGroup struct {
	OutputType string
	// Indices index the dead letters passed to groupDeadLetters, in order.
	Indices []int
	// Oldest is the earliest arrival time among them.
	Oldest time.Time
}

// groupDeadLetters groups dls by output type (pipeline.OutputDeliveryFailed when
// empty), sorted by type so that object writes are deterministic. An
// output type that cannot be a path element is an error.
func groupDeadLetters(dls []pipeline.DeadLetter) ([]deadLetterGroup, error) {
	byType := map[string]int{}
	var groups []deadLetterGroup
	for i := range dls {
		t := dls[i].OutputType
		if t == "" {
			t = pipeline.OutputDeliveryFailed
		}
		if !outputTypeRE.MatchString(t) {
			return nil, fmt.Errorf("invalid error output type %q", t)
		}
		g, ok := byType[t]
		if !ok {
			g = len(groups)
			byType[t] = g
			groups = append(groups, deadLetterGroup{OutputType: t, Oldest: dls[i].Record.Arrived})
		}
		groups[g].Indices = append(groups[g].Indices, i)
		if a := dls[i].Record.Arrived; a.Before(groups[g].Oldest) {
			groups[g].Oldest = a
		}
	}
	slices.SortFunc(groups, func(a, b deadLetterGroup) int {
		switch {
		case a.OutputType < b.OutputType:
			return -1
		case a.OutputType > b.OutputType:
			return 1
		}
		return 0
	})
	return groups, nil
}

// writeErrorRecords writes the dead letters dls[i] for i in idx to w as
// newline-delimited Firehose error records; ending is the
// attemptEndingTimestamp of them all.
func writeErrorRecords(w io.Writer, dls []pipeline.DeadLetter, idx []int, ending time.Time) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for _, i := range idx {
		dl := &dls[i]
		if err := enc.Encode(ErrorRecord{
			AttemptsMade:           dl.Attempts,
			ArrivalTimestamp:       dl.Record.Arrived.UnixMilli(),
			ErrorCode:              dl.Code,
			ErrorMessage:           dl.Message,
			AttemptEndingTimestamp: ending.UnixMilli(),
			RawData:                base64.StdEncoding.EncodeToString(dl.Record.Data),
		}); err != nil {
			return fmt.Errorf("encoding error record: %w", err)
		}
	}
	return nil
}
