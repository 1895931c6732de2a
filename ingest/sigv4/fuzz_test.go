package sigv4

import (
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// FuzzVerify: whatever the Authorization header, X-Amz-Date and query
// string, Verify does not panic, answers a well-formed AWS error, and
// never accepts a request it did not see signed with a known secret.
func FuzzVerify(f *testing.F) {
	f.Add("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261203/us-east-1/firehose/aws4_request, SignedHeaders=host;x-amz-date, Signature=00", "20261203T110000Z", "")
	f.Add("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261203/us-east-1/firehose/aws4_request", "20261203T110000Z", "")
	f.Add("", "", "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20261203%2Fus-east-1%2Ffirehose%2Faws4_request&X-Amz-Date=20261203T110000Z&X-Amz-SignedHeaders=host&X-Amz-Signature=ab&X-Amz-Expires=99999999")
	f.Add("AWS4-HMAC-SHA256 Credential=////, SignedHeaders=;;, Signature==", "x", "X-Amz-Algorithm=")
	f.Fuzz(func(t *testing.T, auth, date, query string) {
		r := httptest.NewRequest("POST", "http://127.0.0.1:4573/", strings.NewReader("{}"))
		if q, err := url.ParseQuery(query); err == nil {
			r.URL.RawQuery = q.Encode()
		}
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		if date != "" {
			r.Header.Set("X-Amz-Date", date)
		}
		id, err := verifier.Verify(r, []byte("{}"))
		if err == nil {
			t.Fatalf("accepted a forged request as %q: %q %q %q", id, auth, date, query)
		}
		e, ok := err.(*Error)
		if !ok || e.Code == "" || e.Message == "" || (e.Status != 400 && e.Status != 403) {
			t.Fatalf("not an AWS error: %#v", err)
		}
	})
}
