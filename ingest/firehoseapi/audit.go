package firehoseapi

import (
	"encoding/json"
	"net/http"
	"time"
)

// Call is what the audit log records of one API call (Config.Audit). It
// never holds record data, the Authorization header, a signature or a
// secret.
type Call struct {
	Time      time.Time // when the call arrived
	RequestID string    // the X-Amzn-RequestId answered
	// Source is the connection's remote address (http.Request.RemoteAddr);
	// X-Forwarded-For is not trusted.
	Source string
	// AccessKeyID is the key whose signature was verified; "" for an
	// unsigned call, a call without authentication, or one whose
	// signature did not verify.
	AccessKeyID string
	Operation   string // the Firehose operation, or "Unknown"
	// Stream is the stream the call named, when the name is valid; "" otherwise.
	Stream string
	// Records and Bytes are the records of a decoded put and their payload
	// bytes (after base64 decoding), whatever the answer.
	Records, Bytes int
	Status         int    // the HTTP status answered
	Result         string // "Success" or the error code answered
	// FailedPutCount is a PutRecordBatch's FailedPutCount.
	FailedPutCount int
	Latency        time.Duration // until the answer was written
}

// errorTypeHeader carries the error code of an error answer, as AWS JSON
// services send it (the SDKs read it before the body's __type).
const errorTypeHeader = "X-Amzn-ErrorType"

// newCall starts the audit record of a request, nil without Config.Audit.
func (h *handler) newCall(r *http.Request, start time.Time, id, op string) *Call {
	if h.audit == nil {
		return nil
	}
	return &Call{Time: start, RequestID: id, Source: r.RemoteAddr, Operation: op}
}

// finishCall completes c once the answer is written and reports it.
func (h *handler) finishCall(w http.ResponseWriter, c *Call, status int, start time.Time) {
	if c == nil {
		return
	}
	c.Status = status
	c.Result = "Success"
	if t := w.Header().Get(errorTypeHeader); t != "" {
		c.Result = t
	} else if status != http.StatusOK {
		c.Result = http.StatusText(status)
	}
	c.Latency = time.Since(start)
	h.audit(*c)
}

// auditPut copies what a put's request state tells into c.
func (st *reqState) auditPut(c *Call) {
	c.AccessKeyID = st.key
	c.FailedPutCount = st.failed
	if !st.decoded {
		return
	}
	req := &st.req
	if nameOK(req) {
		c.Stream = string(req.name)
	}
	if !st.batch {
		if req.hasRecord && len(req.recs) > 0 {
			c.Records, c.Bytes = 1, len(req.recs[0].Data)
		}
		return
	}
	c.Records = req.count
	for _, rec := range req.records() {
		c.Bytes += len(rec.Data)
	}
}

// auditStreamName returns a control call's DeliveryStreamName when it is a
// valid name.
func auditStreamName(body []byte) string {
	var in struct{ DeliveryStreamName *string }
	if json.Unmarshal(body, &in) != nil || in.DeliveryStreamName == nil {
		return ""
	}
	if n := *in.DeliveryStreamName; len(n) <= 64 && validStreamName(n) {
		return n
	}
	return ""
}
