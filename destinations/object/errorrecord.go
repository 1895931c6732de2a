package object

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
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
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	for _, i := range idx {
		dl := &dls[i]
		buf.Reset()
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
		line := buf.Bytes()
		if len(dl.Fields) > 0 {
			var err error
			if line, err = withFields(line, dl.Fields); err != nil {
				return err
			}
		}
		if _, err := w.Write(line); err != nil {
			return fmt.Errorf("writing error record: %w", err)
		}
	}
	return nil
}

// withFields inserts fields, sorted by name, before rawData in an encoded
// error record (Firehose puts esDocumentId, esIndexName and esTypeName
// there). A field named like a common member is an error.
func withFields(line []byte, fields map[string]string) ([]byte, error) {
	at := bytes.LastIndex(line, []byte(`,"rawData":`))
	if at < 0 {
		return nil, fmt.Errorf("encoding error record: no rawData member")
	}
	var extra bytes.Buffer
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		switch k {
		case "attemptsMade", "arrivalTimestamp", "errorCode", "errorMessage", "attemptEndingTimestamp", "rawData":
			return nil, fmt.Errorf("encoding error record: extra field %q would replace a common one", k)
		}
		kj, _ := json.Marshal(k)
		vj, _ := json.Marshal(fields[k])
		extra.WriteByte(',')
		extra.Write(kj)
		extra.WriteByte(':')
		extra.Write(vj)
	}
	out := make([]byte, 0, len(line)+extra.Len())
	out = append(out, line[:at]...)
	out = append(out, extra.Bytes()...)
	return append(out, line[at:]...), nil
}
