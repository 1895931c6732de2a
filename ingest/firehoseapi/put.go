package firehoseapi

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/sluice-dev/sluice/pipeline"
)

// handlePut serves PutRecord (batch=false) and PutRecordBatch.
// c, when not nil, receives what the audit log records of the call.
func (h *handler) handlePut(w http.ResponseWriter, r *http.Request, batch bool, c *Call) int {
	weight := r.ContentLength
	if weight < 0 || weight > MaxBodyBytes {
		weight = MaxBodyBytes
	}
	if err := h.limiter.acquire(r.Context(), weight); err != nil {
		return h.writeError(w, newError(http.StatusServiceUnavailable, errServiceUnavailable, msgSlowDown))
	}
	defer h.limiter.release(weight)
	st := h.pool.Get().(*reqState)
	defer h.pool.Put(st)
	st.key, st.decoded, st.batch, st.failed = "", false, batch, 0
	if c != nil {
		defer st.auditPut(c) // before the state returns to the pool
	}

	body, err := h.readBodyIn(w, r, st.body, MaxBodyBytes)
	st.body = body[:0]
	switch {
	case errors.Is(err, errBodyTimeout):
		return h.writeError(w, bodyTimeoutError(w))
	case errors.Is(err, errBodyTooLarge):
		msg := "Request body exceeds " + strconv.Itoa(MaxBodyBytes) + " bytes"
		if batch {
			msg = msgBatchTooLarge
		}
		w.Header().Set("Connection", "close")
		return h.writeError(w, newError(http.StatusBadRequest, errInvalidArgument, msg))
	case err != nil:
		return h.writeError(w, newError(http.StatusBadRequest, errSerialization, err.Error()))
	}
	hashed := h.hashAsync(body) // verified before anything is decoded into a reply or stored
	req := &st.req
	select {
	case h.decoders <- struct{}{}:
	case <-r.Context().Done():
		if hashed != nil {
			<-hashed
		}
		return h.writeError(w, newError(http.StatusServiceUnavailable, errServiceUnavailable, msgSlowDown))
	}
	err = decodePutRequest(req, body, batch)
	<-h.decoders
	st.decoded = err == nil
	if hashed != nil {
		// Authentication answers first, as AWS checks it before the input.
		key, e := h.authenticateHash(r, <-hashed)
		if e != nil {
			return h.writeError(w, e)
		}
		st.key = key
	} else {
		st.key = ""
	}
	if err != nil {
		return h.writeError(w, newError(http.StatusBadRequest, errSerialization, err.Error()))
	}
	if batch {
		return h.putRecordBatch(w, r, st)
	}
	return h.putRecord(w, r, st)
}

// decodersFor is how many request bodies are decoded at once with procs
// Ps: all but one of them, so that a flood of puts, which costs CPU
// for as long as producers send, leaves a P to delivery (on one P: one at
// a time, so delivery's goroutines wait behind one decode, not one per
// connection).
func decodersFor(procs int) int { return max(1, procs-1) }

// nameOK reports whether the decoded stream name is present and valid.
func nameOK(req *putRequest) bool {
	n := req.name
	if !req.hasName || len(n) < 1 || len(n) > 64 {
		return false
	}
	for _, c := range n {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// lookup finds the target stream of a put and checks it accepts puts.
func (h *handler) lookup(name []byte) (*stream, *apiError) {
	s := h.streams[string(name)]
	if s == nil {
		return nil, notFound(string(name), h.account)
	}
	if s.info.Type == TypeKinesisStreamAsSource {
		return nil, newError(http.StatusBadRequest, errInvalidArgument, msgKinesisSource)
	}
	return s, nil
}

func (h *handler) putRecordBatch(w http.ResponseWriter, r *http.Request, st *reqState) int {
	req := &st.req
	recs := req.records()

	// Model validation first, all violations in one message (Coral style).
	var v validation
	if !nameOK(req) {
		v.checkStreamName(string(req.name), req.hasName, "deliveryStreamName")
	}
	switch {
	case !req.hasRecords:
		v.add("null", "records", "Member must not be null")
	case req.count == 0:
		v.add("'[]'", "records", "Member must have length greater than or equal to 1")
	case req.count > maxBatchRecords:
		v.add("'[...]'", "records", "Member must have length less than or equal to 500")
	}
	total := 0
	for i := range recs {
		d := recs[i].Data
		switch {
		case d == nil:
			v.add("null", "records."+strconv.Itoa(i+1)+".member.data", "Member must not be null")
		case len(d) > maxRecordBytes:
			v.add(byteBufferValue(len(d)), "records."+strconv.Itoa(i+1)+".member.data",
				"Member must have length less than or equal to 1024000")
		}
		total += len(d)
	}
	if e := v.err(); e != nil {
		return h.writeError(w, e)
	}
	if e := h.authorize(st.key, "firehose:PutRecordBatch", string(req.name)); e != nil {
		return h.writeError(w, e)
	}
	s, e := h.lookup(req.name)
	if e != nil {
		return h.writeError(w, e)
	}
	if total > maxBatchBytes {
		return h.writeError(w, newError(http.StatusBadRequest, errInvalidArgument, msgBatchTooLarge))
	}

	// Over the quota, the records after the first refused one are
	// answered "Slow down." and not stored.
	all := recs
	if s.quota != nil {
		n := s.quota.admit(func(i int) int { return len(recs[i].Data) }, len(recs))
		recs = recs[:n]
	}
	rp, replayed, e := replayOf(r)
	if e != nil {
		return h.writeError(w, e)
	}
	if replayed {
		rp.mark(recs)
		defer unmark(all)
	}
	var err error
	if len(recs) > 0 {
		err = h.app.Append(r.Context(), s.info.Name, recs)
	}
	const slowDown = `{"ErrorCode":"ServiceUnavailableException","ErrorMessage":"Slow down."}`
	out := append(st.out[:0], `{"Encrypted":false,"FailedPutCount":`...)
	switch {
	case err == nil:
		stored, skipped := 0, 0
		for i := range recs {
			if replayed && recs[i].ID == "" {
				skipped++ // a replayed record stored before
				continue
			}
			stored += len(recs[i].Data)
		}
		if replayed {
			w.Header().Set(ReplaySkippedHeader, strconv.Itoa(skipped))
		}
		s.m.bytes.Add(float64(stored))
		s.m.records.Add(float64(len(recs) - skipped))
		s.m.requests.Inc()
		refused := len(all) - len(recs)
		st.failed = refused
		s.m.throttled.Add(float64(refused))
		out = strconv.AppendInt(out, int64(refused), 10)
		out = append(out, `,"RequestResponses":[`...)
		for i := range all {
			if i > 0 {
				out = append(out, ',')
			}
			if i >= len(recs) {
				out = append(out, slowDown...)
				continue
			}
			out = append(out, `{"RecordId":`...)
			out = appendJSONString(out, recs[i].ID)
			out = append(out, '}')
		}
	default:
		recs = all
		entry := slowDown
		if errors.Is(err, pipeline.ErrFull) {
			s.m.throttled.Add(float64(len(recs)))
			h.log.Debug("stream buffer full, batch throttled", "stream", s.info.Name, "records", len(recs))
		} else {
			entry = `{"ErrorCode":"InternalFailure","ErrorMessage":"` + msgInternal + `"}`
			h.logAppendError(r, "appending batch", s.info.Name, len(recs), err)
		}
		st.failed = len(recs)
		out = strconv.AppendInt(out, int64(len(recs)), 10)
		out = append(out, `,"RequestResponses":[`...)
		for i := range recs {
			if i > 0 {
				out = append(out, ',')
			}
			out = append(out, entry...)
		}
	}
	out = append(out, "]}"...)
	st.out = out[:0]
	h.writeBody(w, http.StatusOK, out)
	return http.StatusOK
}

func (h *handler) putRecord(w http.ResponseWriter, r *http.Request, st *reqState) int {
	req := &st.req
	var v validation
	if !nameOK(req) {
		v.checkStreamName(string(req.name), req.hasName, "deliveryStreamName")
	}
	var recs []pipeline.Record
	switch {
	case !req.hasRecord:
		v.add("null", "record", "Member must not be null")
	case req.recs[0].Data == nil:
		v.add("null", "record.data", "Member must not be null")
	case len(req.recs[0].Data) > maxRecordBytes:
		v.add(byteBufferValue(len(req.recs[0].Data)), "record.data", "Member must have length less than or equal to 1024000")
	default:
		recs = req.recs[:1]
	}
	if e := v.err(); e != nil {
		return h.writeError(w, e)
	}
	if e := h.authorize(st.key, "firehose:PutRecord", string(req.name)); e != nil {
		return h.writeError(w, e)
	}
	s, e := h.lookup(req.name)
	if e != nil {
		return h.writeError(w, e)
	}
	if s.quota != nil && s.quota.admit(func(int) int { return len(recs[0].Data) }, 1) == 0 {
		s.m.throttled.Inc()
		return h.writeError(w, newError(http.StatusServiceUnavailable, errServiceUnavailable, msgSlowDown))
	}
	if _, replayed, _ := replayOf(r); replayed || r.Header.Get(ReplayIDHeader) != "" || r.Header.Get(ReplaySeqHeader) != "" {
		return h.writeError(w, newError(http.StatusBadRequest, errInvalidArgument, "replays are put with PutRecordBatch"))
	}
	err := h.app.Append(r.Context(), s.info.Name, recs)
	switch {
	case errors.Is(err, pipeline.ErrFull):
		s.m.throttled.Inc()
		return h.writeError(w, newError(http.StatusServiceUnavailable, errServiceUnavailable, msgSlowDown))
	case err != nil:
		h.logAppendError(r, "appending record", s.info.Name, 1, err)
		return h.writeError(w, newError(http.StatusInternalServerError, errInternalFailure, msgInternal))
	}
	s.m.bytes.Add(float64(len(recs[0].Data)))
	s.m.records.Inc()
	s.m.requests.Inc()
	out := append(st.out[:0], `{"RecordId":`...)
	out = appendJSONString(out, recs[0].ID)
	out = append(out, `,"Encrypted":false}`...)
	st.out = out[:0]
	h.writeBody(w, http.StatusOK, out)
	return http.StatusOK
}

// logAppendError logs a failed append: at debug level when the request's
// own context ended (the client went away, or the server is shutting
// down), as an error otherwise.
func (h *handler) logAppendError(r *http.Request, msg, stream string, n int, err error) {
	if r.Context().Err() != nil {
		h.log.Debug(msg+": request ended", "stream", stream, "records", n, "err", err)
		return
	}
	h.log.Error(msg, "stream", stream, "records", n, "err", err)
}
