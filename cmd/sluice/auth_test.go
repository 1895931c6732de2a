package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/firehose"
	"github.com/aws/aws-sdk-go-v2/service/firehose/types"
	"github.com/aws/smithy-go"

	"github.com/sluice-dev/sluice/deploy/testpeers"
)

const (
	writerKey    = "AKIDSLUICEWRITER0001"
	writerSecret = "writer-secret-0123456789abcdefghijklmno"
	adminKey     = "AKIDSLUICEADMIN00001"
)

// startSecure runs a daemon whose API requires SigV4: the writer key may
// put to, describe and list the stream "secure" only; the admin key (its
// secret in a file) may do everything.
func startSecure(t *testing.T) (*daemon, string) {
	t.Helper()
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "admin.secret")
	if err := os.WriteFile(secretFile, []byte("admin-secret-from-a-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return startWithEnv(t, dir, fmt.Sprintf(`auth:
  keys:
    - access_key_id: %s
      secret_access_key: ${WRITER_SECRET}
      allow:
        - actions: [firehose:PutRecord, firehose:PutRecordBatch, firehose:DescribeDeliveryStream, firehose:ListDeliveryStreams]
          streams: [secure]
    - access_key_id: %s
      secret_access_key_file: %s
streams:
  secure:
    buffering: {size: 1, interval: 1}
    destination: {type: file, path: secure, append_newline: true}
  secure-other:
    buffering: {size: 1, interval: 1}
    destination: {type: file, path: other, append_newline: true}
`, writerKey, adminKey, secretFile), []string{"WRITER_SECRET=" + writerSecret}), dir
}

func startWithEnv(t *testing.T, dir, body string, env []string) *daemon {
	t.Helper()
	addr := freeAddr(t)
	p := filepath.Join(dir, "sluice.yaml")
	if err := os.WriteFile(p, []byte("listen: "+addr+"\n"+body), 0o644); err != nil {
		t.Fatal(err)
	}
	return startDaemonEnv(t, p, dir, addr, env)
}

func sdkClient(addr, id, secret string) *firehose.Client {
	return firehose.New(firehose.Options{Region: "eu-west-3", BaseEndpoint: aws.String("http://" + addr),
		Credentials: credentials.NewStaticCredentialsProvider(id, secret, ""), RetryMaxAttempts: 1})
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode() + ": " + ae.ErrorMessage()
	}
	return fmt.Sprint(err)
}

// TestSigV4WithTheGoSDK: the Go SDK with the right keys puts, lists and
// describes; a key limited to one stream is denied on another (IAM's
// message, naming the action and the ARN) and does not see it listed; a
// wrong secret and an unknown key get AWS's errors.
func TestSigV4WithTheGoSDK(t *testing.T) {
	d, dir := startSecure(t)
	ctx := context.Background()
	w := sdkClient(d.addr, writerKey, writerSecret)
	if _, err := w.PutRecord(ctx, &firehose.PutRecordInput{DeliveryStreamName: aws.String("secure"),
		Record: &types.Record{Data: []byte("signed-one")}}); err != nil {
		t.Fatalf("PutRecord: %v", err)
	}
	out, err := w.PutRecordBatch(ctx, &firehose.PutRecordBatchInput{DeliveryStreamName: aws.String("secure"),
		Records: []types.Record{{Data: []byte("signed-two")}, {Data: []byte("signed-three")}}})
	if err != nil || aws.ToInt32(out.FailedPutCount) != 0 {
		t.Fatalf("PutRecordBatch: %v %v", out, err)
	}
	if _, err := w.DescribeDeliveryStream(ctx, &firehose.DescribeDeliveryStreamInput{DeliveryStreamName: aws.String("secure")}); err != nil {
		t.Fatalf("Describe: %v", err)
	}
	list, err := w.ListDeliveryStreams(ctx, &firehose.ListDeliveryStreamsInput{})
	if err != nil || !slices.Equal(list.DeliveryStreamNames, []string{"secure"}) {
		t.Fatalf("the writer lists %v, %v; want only [secure]", list, err)
	}
	_, err = w.PutRecord(ctx, &firehose.PutRecordInput{DeliveryStreamName: aws.String("secure-other"), Record: &types.Record{Data: []byte("x")}})
	if got := apiCode(err); !strings.HasPrefix(got, "AccessDeniedException: User: arn:aws:iam::000000000000:user/"+writerKey+
		" is not authorized to perform: firehose:PutRecord on resource: arn:aws:firehose:us-east-1:000000000000:deliverystream/secure-other") {
		t.Fatalf("put to another stream: %s", got)
	}
	_, err = w.DescribeDeliveryStream(ctx, &firehose.DescribeDeliveryStreamInput{DeliveryStreamName: aws.String("secure-other")})
	if got := apiCode(err); !strings.Contains(got, "AccessDeniedException: User:") || !strings.Contains(got, "firehose:DescribeDeliveryStream") {
		t.Fatalf("describe another stream: %s", got)
	}
	admin := sdkClient(d.addr, adminKey, "admin-secret-from-a-file")
	list, err = admin.ListDeliveryStreams(ctx, &firehose.ListDeliveryStreamsInput{})
	if err != nil || !slices.Equal(list.DeliveryStreamNames, []string{"secure", "secure-other"}) {
		t.Fatalf("the admin lists %v, %v", list, err)
	}
	_, err = sdkClient(d.addr, writerKey, "a-wrong-secret").PutRecord(ctx, &firehose.PutRecordInput{DeliveryStreamName: aws.String("secure"), Record: &types.Record{Data: []byte("x")}})
	if got := apiCode(err); !strings.HasPrefix(got, "InvalidSignatureException: The request signature we calculated does not match the signature you provided.") {
		t.Fatalf("a wrong secret: %s", got)
	}
	_, err = sdkClient(d.addr, "AKIDNOBODYKNOWS00001", "x").ListDeliveryStreams(ctx, &firehose.ListDeliveryStreamsInput{})
	if got := apiCode(err); got != "UnrecognizedClientException: The security token included in the request is invalid." {
		t.Fatalf("an unknown key: %s", got)
	}
	if !waitFor(10*time.Second, func() bool { return len(deliveredLines(t, filepath.Join(dir, "secure"))) == 3 }) {
		t.Fatalf("delivered %v", deliveredLines(t, filepath.Join(dir, "secure")))
	}
	if err := d.stop(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{writerSecret, "admin-secret-from-a-file", "a-wrong-secret"} {
		if strings.Contains(d.log.String(), s) {
			t.Fatalf("a secret in the daemon's log: %s", s)
		}
	}
}

// rawSigned sends body to the API as the SDK would, signed at signAt with
// the writer's key over signedBody (which may differ from body: a
// tampered request).
func rawSigned(t *testing.T, addr, op, body, signedBody string, signAt time.Time, sign bool) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", "http://"+addr+"/", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "Firehose_20150804."+op)
	if sign {
		sum := sha256.Sum256([]byte(signedBody))
		err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: writerKey, SecretAccessKey: writerSecret},
			req, hex.EncodeToString(sum[:]), "firehose", "eu-west-3", signAt)
		if err != nil {
			t.Fatal(err)
		}
	}
	return do(t, req)
}

// TestSigV4Refusals: a missing Authorization header, a date 20 minutes
// off and a tampered body each get AWS's error, status and __type.
func TestSigV4Refusals(t *testing.T) {
	d, _ := startSecure(t)
	body := `{"DeliveryStreamName":"secure","Record":{"Data":"aGVsbG8="}}`
	for _, c := range []struct {
		what       string
		send, sign string
		at         time.Time
		signed     bool
		status     int
		want       string
	}{
		{"no Authorization", body, body, time.Now(), false, 400, `{"__type":"MissingAuthenticationTokenException","message":"Missing Authentication Token"}`},
		{"20 minutes old", body, body, time.Now().Add(-20 * time.Minute), true, 400, `{"__type":"InvalidSignatureException","message":"Signature expired: `},
		{"20 minutes ahead", body, body, time.Now().Add(20 * time.Minute), true, 400, `{"__type":"InvalidSignatureException","message":"Signature not yet current: `},
		{"tampered body", strings.Replace(body, "aGVsbG8=", "aGVsbG9=", 1), body, time.Now(), true, 400,
			`{"__type":"InvalidSignatureException","message":"The request signature we calculated does not match the signature you provided.`},
		{"signed right", body, body, time.Now(), true, 200, `{"RecordId":"`},
	} {
		status, got := rawSigned(t, d.addr, "PutRecord", c.send, c.sign, c.at, c.signed)
		if status != c.status || !strings.HasPrefix(got, c.want) {
			t.Errorf("%s: %d %s, want %d %s…", c.what, status, got, c.status, c.want)
		}
	}
	if v := metricSum(scrape(t, d.addr), "sluice_api_auth_failures_total"); v != 4 {
		t.Errorf("sluice_api_auth_failures_total %v, want 4", v)
	}
}

// TestSigV4WithTheAWSCLI: the AWS CLI (botocore's signer) with the right
// keys puts (one record and a batch), describes and lists (only what the
// key may see); with a wrong secret it reports AWS's error, and on a
// stream the key may not use, AccessDeniedException.
func TestSigV4WithTheAWSCLI(t *testing.T) {
	awsBin, err := exec.LookPath("aws")
	if err != nil {
		t.Fatalf("the AWS CLI is required (make tools installs it): %v", err)
	}
	d, dir := startSecure(t)
	run := func(secret string, args ...string) ([]byte, error) {
		cmd := exec.Command(awsBin, append([]string{"--endpoint-url", "http://" + d.addr, "--output", "json", "firehose"}, args...)...)
		cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+writerKey, "AWS_SECRET_ACCESS_KEY="+secret,
			"AWS_DEFAULT_REGION=eu-west-3", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_MAX_ATTEMPTS=1")
		return cmd.CombinedOutput()
	}
	if out, err := run(writerSecret, "put-record", "--delivery-stream-name", "secure", "--record", `{"Data":"from-the-cli"}`); err != nil {
		t.Fatalf("put-record: %v\n%s", err, out)
	}
	if out, err := run(writerSecret, "put-record-batch", "--delivery-stream-name", "secure",
		"--records", `[{"Data":"from-the-cli-batch-1"},{"Data":"from-the-cli-batch-2"}]`); err != nil || !strings.Contains(string(out), `"FailedPutCount": 0`) {
		t.Fatalf("put-record-batch: %v\n%s", err, out)
	}
	if out, err := run(writerSecret, "describe-delivery-stream", "--delivery-stream-name", "secure"); err != nil || !strings.Contains(string(out), `"DeliveryStreamName": "secure"`) {
		t.Fatalf("describe: %v\n%s", err, out)
	}
	if out, err := run(writerSecret, "list-delivery-streams"); err != nil || !strings.Contains(string(out), `"secure"`) || strings.Contains(string(out), "secure-other") {
		t.Fatalf("list (only secure): %v\n%s", err, out)
	}
	out, err := run("wrong", "put-record", "--delivery-stream-name", "secure", "--record", `{"Data":"x"}`)
	if err == nil || !strings.Contains(string(out), "InvalidSignatureException") {
		t.Fatalf("a wrong secret: %v\n%s", err, out)
	}
	out, err = run(writerSecret, "put-record", "--delivery-stream-name", "secure-other", "--record", `{"Data":"x"}`)
	if err == nil || !strings.Contains(string(out), "AccessDeniedException") {
		t.Fatalf("another stream: %v\n%s", err, out)
	}
	if !waitFor(10*time.Second, func() bool {
		got := deliveredLines(t, filepath.Join(dir, "secure"))
		return got["from-the-cli"] == 1 && got["from-the-cli-batch-1"] == 1 && got["from-the-cli-batch-2"] == 1
	}) {
		t.Fatalf("delivered %v", deliveredLines(t, filepath.Join(dir, "secure")))
	}
}

// TestValidateWarnsOfAnOpenListener: a listener that is not loopback
// without auth is valid, with a warning; with keys, no warning.
func TestValidateWarnsOfAnOpenListener(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		auth string
		warn bool
	}{
		{"", true},
		{"auth:\n  keys:\n    - {access_key_id: " + writerKey + ", secret_access_key: s}\n", false},
	} {
		p := filepath.Join(dir, "open.yaml")
		if err := os.WriteFile(p, []byte("listen: 0.0.0.0:4573\n"+c.auth+"streams:\n  s:\n    destination: {type: file, path: s}\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(sluiceBin, "validate", "-c", p).CombinedOutput()
		if err != nil || strings.Contains(string(out), "warning: listen 0.0.0.0:4573 is not a loopback address and auth is none") != c.warn {
			t.Fatalf("auth %q: %v\n%s", c.auth, err, out)
		}
	}
}

// TestSigV4WithTheJSSDK: the AWS SDK for JavaScript v3, whose signer is
// its own, puts, lists and describes with the right keys; with a wrong
// secret every call gets InvalidSignatureException; the writer key sees
// only its stream and is denied on the other.
func TestSigV4WithTheJSSDK(t *testing.T) {
	script := filepath.Join(testpeers.Dir(), "firehose-js.mjs")
	if _, err := os.Stat(filepath.Join(testpeers.Dir(), "node_modules", "@aws-sdk", "client-firehose")); err != nil {
		t.Fatalf("the AWS SDK for JavaScript is required (deploy/install-test-deps.sh installs it): %v", err)
	}
	d, dir := startSecure(t)
	run := func(secret, stream string) map[string]map[string]any {
		t.Helper()
		cmd := exec.Command("node", script, "http://"+d.addr, writerKey, secret, stream)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output() // stderr may hold Node's warnings
		if err != nil {
			t.Fatalf("node: %v\n%s%s", err, out, stderr.String())
		}
		res := map[string]map[string]any{}
		for _, line := range splitLines(out) {
			var r map[string]any
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatalf("%q: %v", line, err)
			}
			res[r["op"].(string)] = r
		}
		return res
	}
	ok := run(writerSecret, "secure")
	for _, op := range []string{"PutRecord", "PutRecordBatch", "ListDeliveryStreams", "DescribeDeliveryStream"} {
		if ok[op]["ok"] != true {
			t.Fatalf("%s with the right keys: %v", op, ok[op])
		}
	}
	if got := fmt.Sprint(ok["ListDeliveryStreams"]["out"].(map[string]any)["DeliveryStreamNames"]); got != "[secure]" {
		t.Fatalf("the writer lists %s", got)
	}
	for op, r := range run("wrong-secret", "secure") {
		if r["ok"] != false || r["code"] != "InvalidSignatureException" {
			t.Fatalf("%s with a wrong secret: %v", op, r)
		}
	}
	denied := run(writerSecret, "secure-other")
	for _, op := range []string{"PutRecord", "PutRecordBatch", "DescribeDeliveryStream"} {
		if denied[op]["code"] != "AccessDeniedException" {
			t.Fatalf("%s on another stream: %v", op, denied[op])
		}
	}
	want := map[string]int{"from-the-js-sdk-1": 1, "from-the-js-sdk-2": 1, "from-the-js-sdk-3": 1}
	if !waitFor(10*time.Second, func() bool { return fmt.Sprint(deliveredLines(t, filepath.Join(dir, "secure"))) == fmt.Sprint(want) }) {
		t.Fatalf("delivered %v, want %v", deliveredLines(t, filepath.Join(dir, "secure")), want)
	}
}

// TestAdminToken: with admin_token, /metrics needs the bearer token (401
// without it or with another), the status page the token as a basic
// password or a bearer token, while /healthz and /readyz stay open; the
// token is not in the log or the metrics.
func TestAdminToken(t *testing.T) {
	const token = "admin-token-0123456789"
	d := startWithEnv(t, t.TempDir(), `admin_token: ${ADMIN_TOKEN}
streams:
  s:
    destination: {type: file, path: s}
`, []string{"ADMIN_TOKEN=" + token})
	get := func(path, auth string) (int, string) {
		req, _ := http.NewRequest("GET", "http://"+d.addr+path, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		return do(t, req)
	}
	for _, c := range []struct {
		path, auth string
		status     int
	}{
		{"/metrics", "", 401}, {"/metrics", "Bearer wrong", 401}, {"/debug/pprof/", "", 401},
		{"/metrics", "Bearer " + token, 200}, {"/healthz", "", 200}, {"/readyz", "", 200},
		// A browser on the status page: the token as a basic password.
		{"/status", "Basic " + base64.StdEncoding.EncodeToString([]byte("me:"+token)), 200},
		{"/status", "Basic " + base64.StdEncoding.EncodeToString([]byte(token+":wrong")), 401},
		{"/status.json", "", 401},
	} {
		status, body := get(c.path, c.auth)
		if status != c.status {
			t.Fatalf("GET %s with %q: %d, want %d", c.path, c.auth, status, c.status)
		}
		if strings.Contains(body, token) {
			t.Fatalf("GET %s shows the token", c.path)
		}
	}
	if strings.Contains(d.log.String(), token) {
		t.Fatal("the token in the log")
	}
}
