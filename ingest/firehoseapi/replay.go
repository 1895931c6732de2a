package firehoseapi

import (
	"net/http"
	"strconv"

	"github.com/sluice-dev/sluice/pipeline"
)

// Headers of a replayed put (`sluice dlq replay`): the run's id and the
// number of the request's first record in the run (the others follow
// consecutively). The records carry them as metadata
// (pipeline.MetaReplayID, MetaReplaySeq); the Appender stores each record
// of a run once and leaves the ID of one it already holds empty, which
// the answer reports as a success with an empty RecordId, and counts in
// ReplaySkippedHeader.
const (
	ReplayIDHeader      = "X-Sluice-Replay-Id"
	ReplaySeqHeader     = "X-Sluice-Replay-Seq"
	ReplaySkippedHeader = "X-Sluice-Replay-Skipped"
)

// replay is a put's replay headers.
type replay struct {
	id  string
	seq uint64
}

// replayOf reads the replay headers: ok false without them; an error when
// they are malformed or only one is present.
func replayOf(r *http.Request) (replay, bool, *apiError) {
	id, seq := r.Header.Get(ReplayIDHeader), r.Header.Get(ReplaySeqHeader)
	if id == "" && seq == "" {
		return replay{}, false, nil
	}
	n, err := strconv.ParseUint(seq, 10, 63)
	if err != nil || !validReplayID(id) {
		return replay{}, false, newError(http.StatusBadRequest, errInvalidArgument,
			ReplayIDHeader+" must be 1 to 64 characters of [a-zA-Z0-9_-] and "+ReplaySeqHeader+" a decimal record number")
	}
	return replay{id: id, seq: n}, true, nil
}

func validReplayID(id string) bool {
	if len(id) < 1 || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// mark gives recs their replay metadata, and clears the IDs the pooled
// records may still hold.
func (rp replay) mark(recs []pipeline.Record) {
	for i := range recs {
		recs[i].ID = ""
		recs[i].Meta = map[string]string{
			pipeline.MetaReplayID:  rp.id,
			pipeline.MetaReplaySeq: strconv.FormatUint(rp.seq+uint64(i), 10),
		}
	}
}

// unmark drops the metadata from the pooled records.
func unmark(recs []pipeline.Record) {
	for i := range recs {
		recs[i].Meta = nil
	}
}
