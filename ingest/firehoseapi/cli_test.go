package firehoseapi

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The AWS CLI (v1, botocore) against the handler: it must be installed; the
// test fails when it is not.

func runAWS(t *testing.T, e *env, args ...string) (string, error) {
	t.Helper()
	bin, err := exec.LookPath("aws")
	if err != nil {
		t.Fatalf("the AWS CLI is required for this test: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args = append([]string{"firehose", "--endpoint-url", e.srv.URL, "--region", "sa-east-1", "--output", "json"}, args...)
	cmd := exec.CommandContext(ctx, bin, args...)
	dir := t.TempDir()
	cmd.Env = append(os.Environ(),
		"AWS_ACCESS_KEY_ID=AKIDCLITEST", "AWS_SECRET_ACCESS_KEY=whatever", "AWS_SESSION_TOKEN=",
		"AWS_CONFIG_FILE="+filepath.Join(dir, "config"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "credentials"),
		"AWS_PAGER=", "AWS_MAX_ATTEMPTS=1")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestAWSCLI(t *testing.T) {
	e := newEnv(t)
	recs := filepath.Join(t.TempDir(), "records.json")
	// CLI v1 base64-encodes the literal string given as a blob.
	if err := os.WriteFile(recs, []byte(`[{"Data":"hello"},{"Data":"wörld\/"}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := runAWS(t, e, "put-record-batch", "--delivery-stream-name", "alpha", "--records", "file://"+recs)
	if err != nil {
		t.Fatalf("put-record-batch: %v\n%s", err, out)
	}
	var resp struct {
		FailedPutCount   int
		RequestResponses []struct{ RecordId string }
	}
	if err := json.Unmarshal([]byte(out), &resp); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	stored := e.stored(t, "alpha")
	if resp.FailedPutCount != 0 || len(resp.RequestResponses) != 2 || len(stored) != 2 ||
		string(stored[0].Data) != "hello" || string(stored[1].Data) != "wörld/" || resp.RequestResponses[1].RecordId != stored[1].ID {
		t.Fatalf("response %s, stored %+v", out, stored)
	}

	out, err = runAWS(t, e, "describe-delivery-stream", "--delivery-stream-name", "alpha")
	if err != nil || !strings.Contains(out, `"DeliveryStreamARN": "arn:aws:firehose:eu-west-3:123456789012:deliverystream/alpha"`) {
		t.Fatalf("describe: %v\n%s", err, out)
	}
	out, err = runAWS(t, e, "put-record", "--delivery-stream-name", "nosuch", "--record", `{"Data":"x"}`)
	if err == nil || !strings.Contains(out, "An error occurred (ResourceNotFoundException) when calling the PutRecord operation: Firehose nosuch under account 123456789012 not found.") {
		t.Fatalf("put-record to unknown stream: %v\n%s", err, out)
	}
}
