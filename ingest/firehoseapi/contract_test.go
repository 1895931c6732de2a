package firehoseapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/pipeline"
)

// Contract tests, numbered after section 11 of the Firehose contract, with
// raw HTTP requests.

func TestContract01ListDeliveryStreams(t *testing.T) {
	e := newEnv(t)
	r := e.op(t, "ListDeliveryStreams", `{}`)
	if r.status != 200 {
		t.Fatalf("status %d %s", r.status, r.raw)
	}
	want := `{"DeliveryStreamNames":["alpha","beta","broken","gamma","kin","tiny"],"HasMoreDeliveryStreams":false}`
	if string(r.raw) != want {
		t.Fatalf("got %s, want %s", r.raw, want)
	}
	r = e.op(t, "ListDeliveryStreams", `{"DeliveryStreamType":"KinesisStreamAsSource"}`)
	if got := fmt.Sprint(r.body["DeliveryStreamNames"]); got != "[kin]" {
		t.Fatalf("type filter: %s", got)
	}
	wantError(t, e.op(t, "ListDeliveryStreams", `{"DeliveryStreamType":"Nope"}`), 400, errValidation, "enum value set")
	wantError(t, e.op(t, "ListDeliveryStreams", `{"Limit":0}`), 400, errValidation,
		"1 validation error detected: Value '0' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1")
	wantError(t, e.op(t, "ListDeliveryStreams", `{"Limit":10001}`), 400, errValidation, "less than or equal to 10000")
}

func TestContract02UnknownOperation(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct{ method, target string }{
		{http.MethodPost, "Firehose_20150804.Frobnicate"},
		{http.MethodPost, "Kinesis_20131202.PutRecord"},
		{http.MethodPost, "PutRecord"},
		{http.MethodPost, ""},
		{http.MethodGet, "Firehose_20150804.ListDeliveryStreams"},
		{http.MethodPut, "Firehose_20150804.PutRecord"},
	} {
		r := e.call(t, tc.method, tc.target, `{}`)
		wantError(t, r, 400, errUnknownOperation, "")
	}
	if got := e.counter(e.metrics.apiRequests, "Unknown", "400"); got != 4 {
		t.Fatalf("api_requests_total{Unknown,400} = %v, want 4", got)
	}
	if got := e.counter(e.metrics.apiRequests, "ListDeliveryStreams", "400"); got != 1 {
		t.Fatalf("api_requests_total{ListDeliveryStreams,400} = %v, want 1", got)
	}
}

func TestContract03SerializationErrors(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct{ op, body string }{
		{"PutRecordBatch", `not json`},
		{"PutRecordBatch", ``},
		{"PutRecordBatch", `{"DeliveryStreamName":"alpha","Records":[{"Data":"aGVsbG8="}]`},
		{"PutRecordBatch", `{"DeliveryStreamName":"alpha","Records":[{"Data":"!!!"}]}`},
		{"PutRecordBatch", `{"DeliveryStreamName":"alpha","Records":[{"Data":42}]}`},
		{"PutRecordBatch", `{"DeliveryStreamName":"alpha","Records":[{"Data":"aGVsbG8="}]} trailing`},
		{"PutRecord", `{"DeliveryStreamName":"alpha","Record":{"Data":"aGVsbG8"}}`},
		{"PutRecord", `[`},
		{"ListDeliveryStreams", `nope`},
		{"DescribeDeliveryStream", `{"DeliveryStreamName":5}`},
		{"ListTagsForDeliveryStream", `{`},
	} {
		wantError(t, e.op(t, tc.op, tc.body), 400, errSerialization, "")
	}
	e.wantStored(t, "alpha", 0)
	// "\/" is a legal escape inside base64 data.
	r := e.op(t, "PutRecordBatch", `{"DeliveryStreamName":"alpha","Records":[{"Data":"\/\/\/\/"}]}`)
	if r.status != 200 {
		t.Fatalf("escaped base64: %d %s", r.status, r.raw)
	}
	if got := e.stored(t, "alpha"); len(got) != 1 || !bytes.Equal(got[0].Data, []byte{0xff, 0xff, 0xff}) {
		t.Fatalf("stored %v", got)
	}
}

// A body that is valid JSON but not an object is a SerializationException
// for every operation (encoding/json would take null as an empty request),
// and nothing is stored (issue 7, item 9).
func TestContract03NonObjectBodies(t *testing.T) {
	e := newEnv(t)
	for _, op := range []string{"PutRecord", "PutRecordBatch", "ListDeliveryStreams", "DescribeDeliveryStream", "ListTagsForDeliveryStream"} {
		for body, kind := range map[string]string{
			`null`: "null", " null\n": "null", `[]`: "an array", `[{"DeliveryStreamName":"alpha"}]`: "an array",
			`42`: "a number", `"x"`: "a string", `true`: "a boolean",
		} {
			r := e.op(t, op, body)
			want := "The request body must be a JSON object, got " + kind
			if r.status != 400 || r.body["__type"] != errSerialization || r.body["message"] != want {
				t.Errorf("%s %q: %d %s, want 400 %s %q", op, body, r.status, r.raw, errSerialization, want)
			}
		}
	}
	e.wantStored(t, "alpha", 0)
}

// A POST whose Content-Type is not an AWS JSON type is refused, as the
// service's front end does, with 404 UnknownOperationException; its body
// is not read and nothing is stored. The types the SDKs and the CLI send
// are accepted, with parameters and in any case.
func TestContract03ContentType(t *testing.T) {
	e := newEnv(t)
	body := putBody("alpha", []byte("x"))
	for _, ct := range []string{"", "text/plain", "application/x-www-form-urlencoded", "application/x-amz-cbor-1.1",
		"application/xml", "application/x-amz-json-1.2", "application/x-amz-json", "not a media type;;"} {
		r := e.callAs(t, http.MethodPost, targetPrefix+"PutRecord", ct, body)
		want := fmt.Sprintf("Unsupported Content-Type %q: send application/x-amz-json-1.1", ct)
		if r.status != 404 || r.body["__type"] != errUnknownOperation || r.body["message"] != want {
			t.Errorf("Content-Type %q: %d %s, want 404 %s %q", ct, r.status, r.raw, errUnknownOperation, want)
		}
	}
	r := e.callAs(t, http.MethodPost, targetPrefix+"PutRecordBatch", "text/plain", batchBody("alpha", []byte("x")))
	wantError(t, r, 404, errUnknownOperation, `Unsupported Content-Type "text/plain"`)
	r = e.callAs(t, http.MethodPost, targetPrefix+"ListDeliveryStreams", "text/plain", `{}`)
	wantError(t, r, 404, errUnknownOperation, `Unsupported Content-Type "text/plain"`)
	long := "text/" + strings.Repeat("x", 100)
	r = e.callAs(t, http.MethodPost, targetPrefix+"PutRecord", long, body)
	wantError(t, r, 404, errUnknownOperation, fmt.Sprintf("%q", long[:64]+"..."))
	e.wantStored(t, "alpha", 0)
	if got := e.counter(e.metrics.apiRequests, "PutRecord", "404"); got != 9 {
		t.Errorf("api_requests_total{PutRecord,404} = %v, want 9", got)
	}
	for i, ct := range []string{"application/x-amz-json-1.1", "application/x-amz-json-1.0", "application/json",
		"application/x-amz-json-1.1; charset=utf-8", "Application/X-Amz-Json-1.1"} {
		r := e.callAs(t, http.MethodPost, targetPrefix+"PutRecord", ct, body)
		if r.status != 200 {
			t.Errorf("Content-Type %q: %d %s", ct, r.status, r.raw)
		}
		e.wantStored(t, "alpha", i+1)
	}
}

func TestContract04HeadersAndUniqueRequestIDs(t *testing.T) {
	e := newEnv(t)
	seen := map[string]bool{}
	for _, body := range []string{putBody("alpha", []byte("x")), putBody("nope", []byte("x")), `junk`} {
		// call checks Content-Type and the UUID shape on every response.
		r := e.op(t, "PutRecord", body)
		id := r.header.Get("X-Amzn-Requestid")
		if seen[id] {
			t.Fatalf("request id %s reused", id)
		}
		seen[id] = true
	}
}

func TestContract07PutRecordUnknownStream(t *testing.T) {
	e := newEnv(t)
	r := e.op(t, "PutRecord", putBody("nosuch", []byte("x")))
	wantError(t, r, 400, errResourceNotFound, "")
	if r.body["message"] != "Firehose nosuch under account 123456789012 not found." {
		t.Fatalf("message %q", r.body["message"])
	}
	wantError(t, e.op(t, "PutRecordBatch", batchBody("nosuch", []byte("x"))), 400, errResourceNotFound,
		"Firehose nosuch under account 123456789012 not found.")
}

func TestContract08PutRecordSizeLimit(t *testing.T) {
	e := newEnv(t)
	r := e.op(t, "PutRecord", putBody("alpha", bytes.Repeat([]byte{7}, 1_024_000)))
	id, _ := r.body["RecordId"].(string)
	if r.status != 200 || id == "" || r.body["Encrypted"] != false {
		t.Fatalf("max record: %d %.200s", r.status, r.raw)
	}
	r = e.op(t, "PutRecord", putBody("alpha", bytes.Repeat([]byte{7}, 1_024_001)))
	wantError(t, r, 400, errValidation,
		"1 validation error detected: Value 'java.nio.HeapByteBuffer[pos=0 lim=1024001 cap=1024001]' at 'record.data' failed to satisfy constraint: Member must have length less than or equal to 1024000")
	got := e.stored(t, "alpha")
	if len(got) != 1 {
		t.Fatalf("stored %d records, want 1", len(got))
	}
	if len(got[0].Data) != 1_024_000 || got[0].ID != id {
		t.Fatalf("stored %d bytes with id %q, acked %q", len(got[0].Data), got[0].ID, id)
	}
	wantError(t, e.op(t, "PutRecord", `{"DeliveryStreamName":"alpha"}`), 400, errValidation,
		"Value null at 'record' failed to satisfy constraint: Member must not be null")
	wantError(t, e.op(t, "PutRecord", `{"DeliveryStreamName":"alpha","Record":{}}`), 400, errValidation,
		"Value null at 'record.data' failed to satisfy constraint: Member must not be null")
}

func TestContract09BatchOf500InOrder(t *testing.T) {
	e := newEnv(t)
	data := payloads(500, 100)
	r := e.op(t, "PutRecordBatch", batchBody("alpha", data...))
	if r.status != 200 || r.body["FailedPutCount"] != float64(0) || r.body["Encrypted"] != false {
		t.Fatalf("%d %.300s", r.status, r.raw)
	}
	resps := r.body["RequestResponses"].([]any)
	stored := e.stored(t, "alpha")
	if len(resps) != 500 || len(stored) != 500 {
		t.Fatalf("%d responses, %d stored", len(resps), len(stored))
	}
	for i, x := range resps {
		m := x.(map[string]any)
		if len(m) != 1 || m["RecordId"] != stored[i].ID || stored[i].ID == "" {
			t.Fatalf("response %d = %v, stored id %q", i, m, stored[i].ID)
		}
		if !bytes.Equal(stored[i].Data, data[i]) {
			t.Fatalf("record %d stored out of order", i)
		}
	}
	if got := e.counter(e.metrics.incomingRecords, "alpha"); got != 500 {
		t.Fatalf("incoming records %v", got)
	}
	if got := e.counter(e.metrics.incomingBytes, "alpha"); got != 500*100 {
		t.Fatalf("incoming bytes %v", got)
	}
	if got := e.counter(e.metrics.incomingPutRequests, "alpha"); got != 1 {
		t.Fatalf("incoming put requests %v", got)
	}
}

func TestContract10BatchOf501(t *testing.T) {
	e := newEnv(t)
	r := e.op(t, "PutRecordBatch", batchBody("alpha", payloads(501, 10)...))
	wantError(t, r, 400, errValidation, "1 validation error detected: Value '[...]' at 'records' failed to satisfy constraint: Member must have length less than or equal to 500")
	// Count is checked before size: 501 big records are still a ValidationException.
	r = e.op(t, "PutRecordBatch", batchBody("alpha", payloads(501, 9000)...))
	wantError(t, r, 400, errValidation, "less than or equal to 500")
	e.wantStored(t, "alpha", 0)
	wantError(t, e.op(t, "PutRecordBatch", `{"DeliveryStreamName":"alpha","Records":[]}`), 400, errValidation,
		"Value '[]' at 'records' failed to satisfy constraint: Member must have length greater than or equal to 1")
	wantError(t, e.op(t, "PutRecordBatch", `{"DeliveryStreamName":"alpha"}`), 400, errValidation,
		"Value null at 'records' failed to satisfy constraint: Member must not be null")
}

func TestContract11BatchOver4MiB(t *testing.T) {
	e := newEnv(t)
	four := payloads(4, 1_024_000)
	exact := append(four, make([]byte, 4<<20-4*1_024_000)) // exactly 4 MiB
	r := e.op(t, "PutRecordBatch", batchBody("alpha", exact...))
	if r.status != 200 || r.body["FailedPutCount"] != float64(0) {
		t.Fatalf("exactly 4 MiB: %d %.300s", r.status, r.raw)
	}
	over := append(payloads(4, 1_024_000), make([]byte, 4<<20-4*1_024_000+1))
	wantError(t, e.op(t, "PutRecordBatch", batchBody("alpha", over...)), 400, errInvalidArgument, "")
	r = e.op(t, "PutRecordBatch", batchBody("beta", payloads(5, 1_000_000)...))
	wantError(t, r, 400, errInvalidArgument, "")
	if r.body["message"] != "Records size exceeds 4 MB limit" {
		t.Fatalf("message %q", r.body["message"])
	}
	e.wantStored(t, "alpha", 5)
	e.wantStored(t, "beta", 0)
}

func TestContract12BatchWithOversizedRecord(t *testing.T) {
	e := newEnv(t)
	recs := [][]byte{[]byte("ok"), make([]byte, 1_024_001), []byte("ok"), make([]byte, 1_024_002)}
	r := e.op(t, "PutRecordBatch", batchBody("alpha", recs...))
	wantError(t, r, 400, errValidation,
		"2 validation errors detected: Value 'java.nio.HeapByteBuffer[pos=0 lim=1024001 cap=1024001]' at 'records.2.member.data' failed to satisfy constraint: Member must have length less than or equal to 1024000; "+
			"Value 'java.nio.HeapByteBuffer[pos=0 lim=1024002 cap=1024002]' at 'records.4.member.data'")
	r = e.op(t, "PutRecordBatch", batchBody("alpha", []byte("ok"), make([]byte, 1_024_001)))
	wantError(t, r, 400, errValidation, "1 validation error detected: Value 'java.nio.HeapByteBuffer[pos=0 lim=1024001 cap=1024001]' at 'records.2.member.data'")
	e.wantStored(t, "alpha", 0)
}

func TestContract13ZeroLengthData(t *testing.T) {
	e := newEnv(t)
	r := e.op(t, "PutRecordBatch", `{"DeliveryStreamName":"alpha","Records":[{"Data":""},{"Data":"eA=="}]}`)
	if r.status != 200 || r.body["FailedPutCount"] != float64(0) {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	r = e.op(t, "PutRecord", `{"DeliveryStreamName":"alpha","Record":{"Data":""}}`)
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	got := e.stored(t, "alpha")
	if len(got) != 3 || len(got[0].Data) != 0 || string(got[1].Data) != "x" || len(got[2].Data) != 0 {
		t.Fatalf("stored %+v", got)
	}
	if n := e.counter(e.metrics.incomingRecords, "alpha"); n != 3 {
		t.Fatalf("incoming records %v", n)
	}
}

func TestContract14BatchThrottled(t *testing.T) {
	e := newEnv(t)
	// The first small batch fits the tiny quota, the second does not.
	r := e.op(t, "PutRecordBatch", batchBody("tiny", []byte("a"), []byte("b")))
	if r.status != 200 || r.body["FailedPutCount"] != float64(0) {
		t.Fatalf("first batch: %d %s", r.status, r.raw)
	}
	const k = 7
	r = e.op(t, "PutRecordBatch", batchBody("tiny", payloads(k, 40)...))
	if r.status != 200 || r.body["FailedPutCount"] != float64(k) {
		t.Fatalf("throttled batch: %d %s", r.status, r.raw)
	}
	resps := r.body["RequestResponses"].([]any)
	if len(resps) != k {
		t.Fatalf("%d responses", len(resps))
	}
	for i, x := range resps {
		m := x.(map[string]any)
		if len(m) != 2 || m["ErrorCode"] != "ServiceUnavailableException" || m["ErrorMessage"] != "Slow down." {
			t.Fatalf("entry %d = %v", i, m)
		}
	}
	if got := e.counter(e.metrics.throttledRecords, "tiny"); got != k {
		t.Fatalf("throttled records %v, want %d", got, k)
	}
	if got := e.counter(e.metrics.incomingRecords, "tiny"); got != 2 {
		t.Fatalf("incoming records %v, want 2", got)
	}
	e.wantStored(t, "tiny", 2)
}

func TestContract15PutRecordThrottled(t *testing.T) {
	e := newEnv(t)
	r := e.op(t, "PutRecord", putBody("tiny", make([]byte, tinyQuota)))
	wantError(t, r, 503, errServiceUnavailable, "")
	if r.body["message"] != "Slow down." {
		t.Fatalf("message %q", r.body["message"])
	}
	if got := e.counter(e.metrics.throttledRecords, "tiny"); got != 1 {
		t.Fatalf("throttled %v", got)
	}
}

func TestAppendFailureIsInternalFailure(t *testing.T) {
	e := newEnv(t)
	r := e.op(t, "PutRecordBatch", batchBody("broken", []byte("a"), []byte("b")))
	if r.status != 200 || r.body["FailedPutCount"] != float64(2) {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	for _, x := range r.body["RequestResponses"].([]any) {
		if m := x.(map[string]any); m["ErrorCode"] != "InternalFailure" || m["RecordId"] != nil {
			t.Fatalf("entry %v", m)
		}
	}
	wantError(t, e.op(t, "PutRecord", putBody("broken", []byte("a"))), 500, errInternalFailure, "")
}

func TestContract16KinesisSourceStream(t *testing.T) {
	e := newEnv(t)
	msg := "This operation is not permitted on KinesisStreamAsSource delivery stream type."
	wantError(t, e.op(t, "PutRecord", putBody("kin", []byte("x"))), 400, errInvalidArgument, msg)
	wantError(t, e.op(t, "PutRecordBatch", batchBody("kin", []byte("x"))), 400, errInvalidArgument, msg)
	e.wantStored(t, "kin", 0)
}

func TestContract17And18Describe(t *testing.T) {
	e := newEnv(t)
	r := e.op(t, "DescribeDeliveryStream", `{"DeliveryStreamName":"alpha"}`)
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	d := r.body["DeliveryStreamDescription"].(map[string]any)
	for k, want := range map[string]any{
		"DeliveryStreamName":                    "alpha",
		"DeliveryStreamARN":                     "arn:aws:firehose:eu-west-3:123456789012:deliverystream/alpha",
		"DeliveryStreamStatus":                  "ACTIVE",
		"DeliveryStreamType":                    "DirectPut",
		"VersionId":                             "3",
		"HasMoreDestinations":                   false,
		"CreateTimestamp":                       float64(e.created.UnixMilli()) / 1000,
		"DeliveryStreamEncryptionConfiguration": map[string]any{"Status": "DISABLED"},
		"Source":                                map[string]any{"DirectPutSourceDescription": map[string]any{}},
	} {
		if fmt.Sprint(d[k]) != fmt.Sprint(want) {
			t.Errorf("%s = %v, want %v", k, d[k], want)
		}
	}
	if !strings.Contains(string(r.raw), `"CreateTimestamp":1767323045.678`) {
		t.Errorf("CreateTimestamp not in epoch seconds: %s", r.raw)
	}
	// The destination's description is reported verbatim, after the id.
	wantDestinations := func(stream string, members pipeline.Description) {
		t.Helper()
		r := e.op(t, "DescribeDeliveryStream", `{"DeliveryStreamName":"`+stream+`"}`)
		var got struct {
			DeliveryStreamDescription struct{ Destinations []json.RawMessage }
		}
		if err := json.Unmarshal(r.raw, &got); err != nil || r.status != 200 {
			t.Fatalf("%s: %d %s (%v)", stream, r.status, r.raw, err)
		}
		want, err := encodeDestination(members)
		if err != nil {
			t.Fatal(err)
		}
		if dests := got.DeliveryStreamDescription.Destinations; len(dests) != 1 || !bytes.Equal(dests[0], want) {
			t.Fatalf("%s: destinations %s, want [%s]", stream, dests, want)
		}
		if !bytes.HasPrefix(want, []byte(`{"DestinationId":"destinationId-000000000001"`)) {
			t.Fatalf("%s: %s does not start with the DestinationId", stream, want)
		}
	}
	wantDestinations("alpha", alphaDestination())
	// A member named DestinationId is ignored: the id is the handler's.
	wantDestinations("beta", pipeline.Description{"HttpEndpointDestinationDescription": betaHTTPEndpoint})
	wantDestinations("gamma", nil)
	dest := r.body["DeliveryStreamDescription"].(map[string]any)["Destinations"].([]any)[0].(map[string]any)
	s3 := dest["ExtendedS3DestinationDescription"].(map[string]any)
	if fmt.Sprint(s3["BufferingHints"]) != "map[IntervalInSeconds:60 SizeInMBs:64]" || s3["S3BackupMode"] != "Disabled" || dest["S3DestinationDescription"] == nil {
		t.Fatalf("alpha destination %v", dest)
	}
	if !strings.Contains(string(r.raw), `"Destinations":[{"DestinationId":"destinationId-000000000001","ExtendedS3DestinationDescription":{"BucketARN":"arn:aws:s3:::my-bucket",`) {
		t.Fatalf("alpha: %s", r.raw)
	}
	// Starting after the only destination lists none.
	r = e.op(t, "DescribeDeliveryStream", `{"DeliveryStreamName":"alpha","ExclusiveStartDestinationId":"destinationId-000000000001"}`)
	if got := fmt.Sprint(r.body["DeliveryStreamDescription"].(map[string]any)["Destinations"]); got != "[]" {
		t.Fatalf("after the only destination: %s", got)
	}
	r = e.op(t, "DescribeDeliveryStream", `{"DeliveryStreamName":"kin"}`)
	src := r.body["DeliveryStreamDescription"].(map[string]any)["Source"].(map[string]any)
	if fmt.Sprint(src["KinesisStreamSourceDescription"].(map[string]any)["KinesisStreamARN"]) != "arn:aws:kinesis:eu-west-3:123456789012:stream/src" ||
		!strings.Contains(string(r.raw), `"DeliveryStartTimestamp":1764547200.123`) {
		t.Fatalf("kinesis source %s", r.raw)
	}
	wantError(t, e.op(t, "DescribeDeliveryStream", `{"DeliveryStreamName":"zzz"}`), 400, errResourceNotFound,
		"Firehose zzz under account 123456789012 not found.")
	wantError(t, e.op(t, "DescribeDeliveryStream", `{}`), 400, errValidation, "Value null at 'deliveryStreamName'")
	wantError(t, e.op(t, "DescribeDeliveryStream", `{"DeliveryStreamName":"bad name"}`), 400, errValidation,
		"Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+")
}

func TestContract19ListPagination(t *testing.T) {
	e := newEnv(t)
	var all []string
	start := ""
	for {
		body := `{"Limit":1}`
		if start != "" {
			body = `{"Limit":1,"ExclusiveStartDeliveryStreamName":"` + start + `"}`
		}
		r := e.op(t, "ListDeliveryStreams", body)
		names := r.body["DeliveryStreamNames"].([]any)
		if len(names) != 1 {
			t.Fatalf("page after %q: %s", start, r.raw)
		}
		start = names[0].(string)
		all = append(all, start)
		if r.body["HasMoreDeliveryStreams"] == false {
			break
		}
	}
	if strings.Join(all, ",") != "alpha,beta,broken,gamma,kin,tiny" {
		t.Fatalf("paged %v", all)
	}
	// A start name that is not a stream continues strictly after it.
	r := e.op(t, "ListDeliveryStreams", `{"ExclusiveStartDeliveryStreamName":"broken","Limit":2}`)
	if string(r.raw) != `{"DeliveryStreamNames":["gamma","kin"],"HasMoreDeliveryStreams":true}` {
		t.Fatalf("got %s", r.raw)
	}
	r = e.op(t, "ListDeliveryStreams", `{"ExclusiveStartDeliveryStreamName":"c"}`)
	if string(r.raw) != `{"DeliveryStreamNames":["gamma","kin","tiny"],"HasMoreDeliveryStreams":false}` {
		t.Fatalf("got %s", r.raw)
	}
}

func TestContract20MutatingCallsRejected(t *testing.T) {
	e := newEnv(t)
	for _, op := range []string{"CreateDeliveryStream", "DeleteDeliveryStream", "UpdateDestination", "TagDeliveryStream",
		"UntagDeliveryStream", "StartDeliveryStreamEncryption", "StopDeliveryStreamEncryption"} {
		wantError(t, e.op(t, op, `{"DeliveryStreamName":"alpha"}`), 400, errInvalidArgument, "Sluice configuration file")
	}
}

func TestListTags(t *testing.T) {
	e := newEnv(t)
	r := e.op(t, "ListTagsForDeliveryStream", `{"DeliveryStreamName":"alpha"}`)
	want := `{"Tags":[{"Key":"cost","Value":"42"},{"Key":"env","Value":"prod"},{"Key":"team","Value":"data"}],"HasMoreTags":false}`
	if string(r.raw) != want {
		t.Fatalf("got %s", r.raw)
	}
	r = e.op(t, "ListTagsForDeliveryStream", `{"DeliveryStreamName":"alpha","Limit":1,"ExclusiveStartTagKey":"cost"}`)
	if string(r.raw) != `{"Tags":[{"Key":"env","Value":"prod"}],"HasMoreTags":true}` {
		t.Fatalf("got %s", r.raw)
	}
	r = e.op(t, "ListTagsForDeliveryStream", `{"DeliveryStreamName":"gamma"}`)
	if string(r.raw) != `{"Tags":[],"HasMoreTags":false}` {
		t.Fatalf("got %s", r.raw)
	}
	wantError(t, e.op(t, "ListTagsForDeliveryStream", `{"DeliveryStreamName":"alpha","Limit":51}`), 400, errValidation, "less than or equal to 50")
	wantError(t, e.op(t, "ListTagsForDeliveryStream", `{"DeliveryStreamName":"nope"}`), 400, errResourceNotFound, "")
}

func TestStreamNameValidation(t *testing.T) {
	e := newEnv(t)
	long := strings.Repeat("a", 65)
	wantError(t, e.op(t, "PutRecordBatch", batchBody(long, []byte("x"))), 400, errValidation,
		"1 validation error detected: Value '"+long+"' at 'deliveryStreamName' failed to satisfy constraint: Member must have length less than or equal to 64")
	wantError(t, e.op(t, "PutRecordBatch", batchBody("a b", []byte("x"))), 400, errValidation,
		"Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+")
	wantError(t, e.op(t, "PutRecord", `{"Record":{"Data":""}}`), 400, errValidation,
		"Value null at 'deliveryStreamName' failed to satisfy constraint: Member must not be null")
	wantError(t, e.op(t, "PutRecordBatch", `{"DeliveryStreamName":"","Records":[]}`), 400, errValidation,
		"3 validation errors detected")
}

func TestBodyTooLarge(t *testing.T) {
	e := newEnv(t)
	big := `{"DeliveryStreamName":"alpha","Records":[{"Data":"` + strings.Repeat("A", MaxBodyBytes) + `"}]}`
	wantError(t, e.op(t, "PutRecordBatch", big), 400, errInvalidArgument, "Records size exceeds 4 MB limit")
	wantError(t, e.op(t, "PutRecord", big), 400, errInvalidArgument, "exceeds 6291456 bytes")
	// Chunked (unknown length) bodies are cut off at the limit too.
	req, err := http.NewRequest(http.MethodPost, e.srv.URL, io.MultiReader(strings.NewReader(big)))
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = -1
	req.Header.Set("X-Amz-Target", targetPrefix+"PutRecordBatch")
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	resp, err := e.srv.Client().Do(req.WithContext(context.Background()))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(body), errInvalidArgument) {
		t.Fatalf("chunked: %d %s", resp.StatusCode, body)
	}
	e.wantStored(t, "alpha", 0)
}

// A destination description that cannot be encoded fails NewHandler, not
// DescribeDeliveryStream.
func TestNewHandlerRejectsBadDescription(t *testing.T) {
	_, err := NewHandler(Config{Appender: router{}, Streams: []StreamInfo{
		{Name: "s", Destination: pipeline.Description{"HttpEndpointDestinationDescription": map[string]any{"Bad": make(chan int)}}},
	}})
	if err == nil || !strings.Contains(err.Error(), `stream "s": destination description member HttpEndpointDestinationDescription`) {
		t.Fatalf("NewHandler: %v", err)
	}
}
