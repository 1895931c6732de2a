package sigv4

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

var (
	now  = time.Date(2026, 12, 3, 11, 0, 0, 0, time.UTC)
	keys = map[string]Key{
		"AKIDEXAMPLE":   {ID: "AKIDEXAMPLE", Secret: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"},
		"ASIATEMPORARY": {ID: "ASIATEMPORARY", Secret: "temporary-secret", SessionToken: "the-session-token"},
	}
	verifier = &Verifier{Service: "firehose", Lookup: func(id string) (Key, bool) { k, ok := keys[id]; return k, ok }, Now: func() time.Time { return now }}
)

// request is a Firehose call as the Go SDK sends it, signed by the SDK's
// own signer (the reference this verifier must agree with).
func request(t *testing.T, target, body string, creds aws.Credentials, region string, at time.Time, sign func(*http.Request, string)) *http.Request {
	t.Helper()
	r := httptest.NewRequest("POST", "http://127.0.0.1:4573/", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-amz-json-1.1")
	r.Header.Set("X-Amz-Target", "Firehose_20150804."+target)
	r.Header.Set("User-Agent", "aws-sdk-go-v2/1.0 (unsigned)")
	sum := sha256.Sum256([]byte(body))
	hash := hex.EncodeToString(sum[:])
	if sign != nil {
		sign(r, hash)
		return r
	}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, r, hash, "firehose", region, at); err != nil {
		t.Fatal(err)
	}
	return r
}

func creds(id string) aws.Credentials {
	k := keys[id]
	return aws.Credentials{AccessKeyID: k.ID, SecretAccessKey: k.Secret, SessionToken: k.SessionToken}
}

func wantErr(t *testing.T, what string, err error, status int, code, msgPrefix string) {
	t.Helper()
	e, ok := err.(*Error)
	if !ok || e.Status != status || e.Code != code || !strings.HasPrefix(e.Message, msgPrefix) {
		t.Fatalf("%s: %v, want %d %s %q…", what, err, status, code, msgPrefix)
	}
}

func verify(r *http.Request) (string, error) {
	var body bytes.Buffer
	_, _ = body.ReadFrom(r.Body)
	return verifier.Verify(r, body.Bytes())
}

func TestVerifyAcceptsTheSDKsSignatures(t *testing.T) {
	body := `{"DeliveryStreamName":"s","Record":{"Data":"aGVsbG8="}}`
	for _, id := range []string{"AKIDEXAMPLE", "ASIATEMPORARY"} {
		for _, region := range []string{"us-east-1", "eu-west-3"} {
			r := request(t, "PutRecord", body, creds(id), region, now.Add(-time.Minute), nil)
			got, err := verify(r)
			if err != nil || got != id {
				t.Fatalf("%s in %s: %q, %v", id, region, got, err)
			}
		}
	}
	// A presigned request (query-string signature), with a path and a
	// query that need escaping.
	r := httptest.NewRequest("POST", "http://127.0.0.1:4573/a%20b/c~d?list=x%2Fy&b=2&b=1", strings.NewReader(body))
	r.Header.Set("X-Amz-Target", "Firehose_20150804.PutRecord")
	u, _, err := v4.NewSigner().PresignHTTP(context.Background(), creds("AKIDEXAMPLE"), r, "UNSIGNED-PAYLOAD", "firehose", "us-east-1", now.Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	pr := httptest.NewRequest("POST", u, strings.NewReader(body))
	pr.Header.Set("X-Amz-Target", "Firehose_20150804.PutRecord")
	if got, err := verify(pr); err != nil || got != "AKIDEXAMPLE" {
		t.Fatalf("presigned: %q, %v", got, err)
	}
	// Its expiry (15 minutes, the SDK's default) is honoured.
	late := *verifier
	late.Now = func() time.Time { return now.Add(20 * time.Minute) }
	pr = httptest.NewRequest("POST", u, strings.NewReader(body))
	pr.Header.Set("X-Amz-Target", "Firehose_20150804.PutRecord")
	if _, err := late.Verify(pr, []byte(body)); err == nil {
		t.Fatal("an expired presigned request was accepted")
	}
}

func TestVerifyRefusals(t *testing.T) {
	body := `{"DeliveryStreamName":"s","Record":{"Data":"aGVsbG8="}}`
	wrong := creds("AKIDEXAMPLE")
	wrong.SecretAccessKey = "not-the-secret"
	_, err := verify(request(t, "PutRecord", body, wrong, "us-east-1", now, nil))
	wantErr(t, "wrong secret", err, 400, "InvalidSignatureException", mismatch+"\n\nThe Canonical String for this request should have been\n'POST\n/\n\ncontent-length:")
	if strings.Contains(err.Error(), keys["AKIDEXAMPLE"].Secret) || strings.Contains(err.Error(), "not-the-secret") {
		t.Fatal("a secret in the error")
	}

	unknown := aws.Credentials{AccessKeyID: "AKIDUNKNOWN", SecretAccessKey: "x"}
	_, err = verify(request(t, "PutRecord", body, unknown, "us-east-1", now, nil))
	wantErr(t, "unknown key", err, 403, "UnrecognizedClientException", "The security token included in the request is invalid.")

	noToken := creds("ASIATEMPORARY")
	noToken.SessionToken = ""
	_, err = verify(request(t, "PutRecord", body, noToken, "us-east-1", now, nil))
	wantErr(t, "a temporary key without its session token", err, 403, "UnrecognizedClientException", "The security token")

	_, err = verify(request(t, "PutRecord", body, creds("AKIDEXAMPLE"), "us-east-1", now.Add(-20*time.Minute), nil))
	wantErr(t, "20 minutes old", err, 400, "InvalidSignatureException",
		"Signature expired: 20261203T104000Z is now earlier than 20261203T104500Z (20261203T110000Z - 15 min.)")
	_, err = verify(request(t, "PutRecord", body, creds("AKIDEXAMPLE"), "us-east-1", now.Add(20*time.Minute), nil))
	wantErr(t, "20 minutes ahead", err, 400, "InvalidSignatureException",
		"Signature not yet current: 20261203T112000Z is still later than 20261203T111500Z (20261203T110000Z + 15 min.)")

	r := request(t, "PutRecord", body, creds("AKIDEXAMPLE"), "us-east-1", now, nil)
	tampered := strings.Replace(body, "aGVsbG8=", "aGVsbG9=", 1)
	_, err = verifier.Verify(r, []byte(tampered))
	wantErr(t, "tampered body", err, 400, "InvalidSignatureException", mismatch)
	r = request(t, "PutRecord", body, creds("AKIDEXAMPLE"), "us-east-1", now, nil)
	r.Header.Set("X-Amz-Content-Sha256", strings.Repeat("0", 64))
	_, err = verify(r)
	wantErr(t, "a payload hash that is not the body's", err, 400, "InvalidSignatureException", "The provided 'x-amz-content-sha256' header does not match")

	r = request(t, "PutRecord", body, creds("AKIDEXAMPLE"), "us-east-1", now, nil)
	r.Header.Set("X-Amz-Target", "Firehose_20150804.DeleteDeliveryStream") // a signed header changed
	_, err = verify(r)
	wantErr(t, "a signed header changed", err, 400, "InvalidSignatureException", mismatch)

	r = request(t, "PutRecord", body, creds("AKIDEXAMPLE"), "us-east-1", now, nil)
	r.Header.Del("Authorization")
	_, err = verify(r)
	wantErr(t, "no Authorization", err, 400, "MissingAuthenticationTokenException", "Missing Authentication Token")

	r = request(t, "PutRecord", body, creds("AKIDEXAMPLE"), "us-east-1", now, nil)
	r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261203/us-east-1/firehose/aws4_request")
	_, err = verify(r)
	wantErr(t, "incomplete", err, 400, "IncompleteSignatureException",
		"Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. Authorization=AWS4-HMAC-SHA256 Credential=")

	r = request(t, "PutRecord", body, creds("AKIDEXAMPLE"), "us-east-1", now, func(r *http.Request, hash string) {
		if err := v4.NewSigner().SignHTTP(context.Background(), creds("AKIDEXAMPLE"), r, hash, "kinesis", "us-east-1", now); err != nil {
			t.Fatal(err)
		}
	})
	_, err = verify(r)
	wantErr(t, "signed for another service", err, 400, "InvalidSignatureException", "Credential should be scoped to correct service: 'firehose'.")

	only := *verifier
	only.Region = "eu-west-3"
	r = request(t, "PutRecord", body, creds("AKIDEXAMPLE"), "us-east-1", now, nil)
	_, err = only.Verify(r, []byte(body))
	wantErr(t, "another region", err, 400, "InvalidSignatureException", "Credential should be scoped to a valid region.")
}
