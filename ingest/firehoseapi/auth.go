package firehoseapi

import (
	"errors"
	"net/http"

	"github.com/sluice-dev/sluice/ingest/sigv4"
)

// authenticate runs Config.Verify on a request whose body is read: the
// access key that signed it, or the error to answer (AWS's, from package
// sigv4). Without Verify every request is accepted, as the key "".
func (h *handler) authenticate(r *http.Request, body []byte) (string, *apiError) {
	if h.verify == nil {
		return "", nil
	}
	return h.authenticateHash(r, sigv4.PayloadHash(body))
}

// authenticateHash is authenticate with the body's hash computed already.
func (h *handler) authenticateHash(r *http.Request, payload string) (string, *apiError) {
	key, err := h.verify(r, payload)
	if err == nil {
		return key, nil
	}
	h.metrics.authFailures.Inc()
	var se *sigv4.Error
	if errors.As(err, &se) {
		return "", newError(se.Status, se.Code, se.Message)
	}
	h.log.Error("verifying a request's signature", "err", err)
	return "", newError(http.StatusInternalServerError, errInternalFailure, msgInternal)
}

// authorize checks Config.Allow: IAM's AccessDeniedException names the
// principal, the action and the stream's ARN (the stream need not exist:
// IAM decides before the service looks).
func (h *handler) authorize(key, action, stream string) *apiError {
	if h.allow == nil || h.allow(key, action, stream) {
		return nil
	}
	return newError(http.StatusBadRequest, errAccessDenied,
		"User: arn:aws:iam::"+h.account+":user/"+key+" is not authorized to perform: "+action+
			" on resource: arn:aws:firehose:"+h.region+":"+h.account+":deliverystream/"+stream+
			" because no identity-based policy allows the "+action+" action")
}

// hashAsync hashes body in a goroutine when requests are verified, so that
// the hash (the bulk of verification: a pass over the body) runs while
// the body is decoded; nil without verification.
func (h *handler) hashAsync(body []byte) <-chan string {
	if h.verify == nil {
		return nil
	}
	c := make(chan string, 1)
	go func() { c <- sigv4.PayloadHash(body) }()
	return c
}
