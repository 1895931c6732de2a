package firehoseapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
)

// Control-plane operations, answered from the configuration with
// encoding/json (they are rare).

// controlOp handles a decoded-on-demand control-plane request. It returns
// the response value (marshalled with encoding/json) or an API error.
type controlOp func(body []byte, key string) (any, *apiError)

// c, when not nil, receives what the audit log records of the call.
func (h *handler) handleControl(w http.ResponseWriter, r *http.Request, op controlOp, c *Call) int {
	body, err := h.readBodyIn(w, r, nil, maxControlBodyBytes)
	switch {
	case errors.Is(err, errBodyTimeout):
		return h.writeError(w, bodyTimeoutError(w))
	case errors.Is(err, errBodyTooLarge):
		w.Header().Set("Connection", "close")
		return h.writeError(w, newError(http.StatusBadRequest, errInvalidArgument,
			"Request body exceeds "+strconv.Itoa(maxControlBodyBytes)+" bytes"))
	case err != nil:
		return h.writeError(w, newError(http.StatusBadRequest, errSerialization, err.Error()))
	}
	if c != nil {
		c.Stream = auditStreamName(body)
	}
	key, e := h.authenticate(r, body)
	if e != nil {
		return h.writeError(w, e)
	}
	if c != nil {
		c.AccessKeyID = key
	}
	resp, e := op(body, key)
	if e != nil {
		return h.writeError(w, e)
	}
	out, err := json.Marshal(resp)
	if err != nil {
		h.log.Error("encoding response", "err", err)
		return h.writeError(w, newError(http.StatusInternalServerError, errInternalFailure, msgInternal))
	}
	h.writeBody(w, http.StatusOK, out)
	return http.StatusOK
}

// unmarshalInput decodes a control-plane request body, which must be a
// JSON object (encoding/json would take a top-level null as empty input).
func unmarshalInput(body []byte, v any) *apiError {
	if t := bytes.TrimLeft(body, " \t\r\n"); len(t) > 0 && t[0] != '{' && json.Valid(t) {
		return newError(http.StatusBadRequest, errSerialization, notObjectError(kindOf(t[0])).Error())
	}
	if err := json.Unmarshal(body, v); err != nil {
		return newError(http.StatusBadRequest, errSerialization, "Could not parse request body: "+err.Error())
	}
	return nil
}

// checkLimit validates an optional Limit member against [lo, hi].
func (v *validation) checkLimit(limit *int, lo, hi int) {
	if limit == nil {
		return
	}
	val := quoteValue(strconv.Itoa(*limit))
	if *limit < lo {
		v.add(val, "limit", "Member must have value greater than or equal to "+strconv.Itoa(lo))
	}
	if *limit > hi {
		v.add(val, "limit", "Member must have value less than or equal to "+strconv.Itoa(hi))
	}
}

func (h *handler) listDeliveryStreams(body []byte, key string) (any, *apiError) {
	var in struct {
		Limit                            *int
		DeliveryStreamType               *string
		ExclusiveStartDeliveryStreamName *string
	}
	if e := unmarshalInput(body, &in); e != nil {
		return nil, e
	}
	var v validation
	v.checkLimit(in.Limit, 1, 10000)
	if in.DeliveryStreamType != nil && !validStreamType(*in.DeliveryStreamType) {
		v.add(quoteValue(*in.DeliveryStreamType), "deliveryStreamType",
			"Member must satisfy enum value set: [DirectPut, KinesisStreamAsSource, MSKAsSource, DatabaseAsSource]")
	}
	if in.ExclusiveStartDeliveryStreamName != nil {
		v.checkOptionalStreamName(*in.ExclusiveStartDeliveryStreamName, "exclusiveStartDeliveryStreamName")
	}
	if e := v.err(); e != nil {
		return nil, e
	}
	limit := 10
	if in.Limit != nil {
		limit = *in.Limit
	}
	out := struct {
		DeliveryStreamNames    []string
		HasMoreDeliveryStreams bool
	}{DeliveryStreamNames: []string{}}
	for _, name := range h.names {
		if in.ExclusiveStartDeliveryStreamName != nil && name <= *in.ExclusiveStartDeliveryStreamName {
			continue
		}
		if in.DeliveryStreamType != nil && h.streams[name].info.Type != *in.DeliveryStreamType {
			continue
		}
		if h.allow != nil && !h.allow(key, "firehose:ListDeliveryStreams", name) {
			continue // a key sees only the streams it may list
		}
		if len(out.DeliveryStreamNames) == limit {
			out.HasMoreDeliveryStreams = true
			break
		}
		out.DeliveryStreamNames = append(out.DeliveryStreamNames, name)
	}
	return out, nil
}

// findStream validates a DeliveryStreamName input, checks that key may do
// action on it, and looks the stream up.
func (h *handler) findStream(name *string, v *validation, key, action string) (*stream, *apiError) {
	if name == nil {
		v.checkStreamName("", false, "deliveryStreamName")
	} else {
		v.checkOptionalStreamName(*name, "deliveryStreamName")
	}
	if e := v.err(); e != nil {
		return nil, e
	}
	if e := h.authorize(key, action, *name); e != nil {
		return nil, e
	}
	s := h.streams[*name]
	if s == nil {
		return nil, notFound(*name, h.account)
	}
	return s, nil
}

func (h *handler) listTags(body []byte, key string) (any, *apiError) {
	var in struct {
		DeliveryStreamName   *string
		ExclusiveStartTagKey *string
		Limit                *int
	}
	if e := unmarshalInput(body, &in); e != nil {
		return nil, e
	}
	var v validation
	v.checkLimit(in.Limit, 1, 50)
	if in.ExclusiveStartTagKey != nil && (len(*in.ExclusiveStartTagKey) < 1 || len(*in.ExclusiveStartTagKey) > 128) {
		v.add(quoteValue(*in.ExclusiveStartTagKey), "exclusiveStartTagKey", "Member must have length between 1 and 128")
	}
	s, e := h.findStream(in.DeliveryStreamName, &v, key, "firehose:ListTagsForDeliveryStream")
	if e != nil {
		return nil, e
	}
	limit := 50
	if in.Limit != nil {
		limit = *in.Limit
	}
	keys := make([]string, 0, len(s.info.Tags))
	for k := range s.info.Tags {
		if in.ExclusiveStartTagKey == nil || k > *in.ExclusiveStartTagKey {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	type tag struct{ Key, Value string }
	out := struct {
		Tags        []tag
		HasMoreTags bool
	}{Tags: []tag{}}
	for _, k := range keys {
		if len(out.Tags) == limit {
			out.HasMoreTags = true
			break
		}
		out.Tags = append(out.Tags, tag{Key: k, Value: s.info.Tags[k]})
	}
	return out, nil
}

// validStreamType reports whether t is a DeliveryStreamType of the model.
func validStreamType(t string) bool {
	switch t {
	case "DirectPut", "KinesisStreamAsSource", "MSKAsSource", "DatabaseAsSource":
		return true
	}
	return false
}
