package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/firehose"
	"github.com/aws/aws-sdk-go-v2/service/firehose/types"

	"github.com/sluice-dev/sluice/deploy/testpeers/testcert"
)

// tlsDaemon runs a daemon whose API listens over TLS on the certificate
// files certFile/keyFile (and, with clientCA, requires client
// certificates), its admin listener plain; it returns the daemon and the
// API's address.
func tlsDaemon(t *testing.T, dir, certFile, keyFile, clientCA string) (*daemon, string) {
	t.Helper()
	api, admin := freeAddr(t), freeAddr(t)
	extra := ""
	if clientCA != "" {
		extra = "\n  client_ca_file: " + clientCA
	}
	cfg := filepath.Join(dir, "sluice.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`listen: %s
admin_listen: %s
tls:
  cert_file: %s
  key_file: %s%s
streams:
  tls:
    buffering: {size: 1, interval: 1}
    destination: {type: file, path: out, append_newline: true}
`, api, admin, certFile, keyFile, extra)), 0o644); err != nil {
		t.Fatal(err)
	}
	return startDaemonEnv(t, cfg, dir, admin, nil), api
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	tmp := to + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, to); err != nil {
		t.Fatal(err)
	}
}

// servedCert returns the leaf certificate a fresh TLS connection to addr
// is served.
func servedCert(t *testing.T, addr string, roots *x509.CertPool) []byte {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots})
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].Raw
}

// TestTLS: the API over TLS takes the Go SDK's and the AWS CLI's calls
// (--ca-bundle), refuses plain HTTP and TLS 1.1, and serves a certificate
// replaced on disk from the next connection on, without a restart.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"a", "b", "served"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	a, err := testcert.New(filepath.Join(dir, "a"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := testcert.New(filepath.Join(dir, "b"))
	if err != nil {
		t.Fatal(err)
	}
	cert, key := filepath.Join(dir, "served", "server.pem"), filepath.Join(dir, "served", "server-key.pem")
	copyFile(t, a.ServerCertFile, cert)
	copyFile(t, a.ServerKeyFile, key)
	d, api := tlsDaemon(t, dir, cert, key, "")

	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(must(os.ReadFile(a.CAFile)))
	roots.AppendCertsFromPEM(must(os.ReadFile(b.CAFile)))
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	c := firehose.New(firehose.Options{Region: "us-east-1", BaseEndpoint: aws.String("https://" + api), HTTPClient: hc,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDANY", "any", "")})
	if _, err := c.PutRecord(context.Background(), &firehose.PutRecordInput{DeliveryStreamName: aws.String("tls"),
		Record: &types.Record{Data: []byte("over-tls-sdk")}}); err != nil {
		t.Fatalf("PutRecord over TLS: %v", err)
	}
	awsBin, err := exec.LookPath("aws")
	if err != nil {
		t.Fatalf("the AWS CLI is required: %v", err)
	}
	cmd := exec.Command(awsBin, "--endpoint-url", "https://"+api, "--ca-bundle", a.CAFile, "firehose", "put-record",
		"--delivery-stream-name", "tls", "--record", `{"Data":"over-tls-cli"}`)
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=AKIDANY", "AWS_SECRET_ACCESS_KEY=any", "AWS_DEFAULT_REGION=us-east-1",
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("aws --ca-bundle put-record: %v\n%s", err, out)
	}
	if resp, err := http.Post("http://"+api+"/", "application/x-amz-json-1.1", strings.NewReader("{}")); err == nil {
		resp.Body.Close()
		if resp.StatusCode < 400 {
			t.Fatalf("plain HTTP to the TLS listener: %d", resp.StatusCode)
		}
	}
	if c, err := tls.Dial("tcp", api, &tls.Config{RootCAs: roots, MaxVersion: tls.VersionTLS11}); err == nil {
		c.Close()
		t.Fatal("a TLS 1.1 handshake succeeded")
	}

	// Renewal: new files on disk, served without a restart.
	if !bytes.Equal(servedCert(t, api, roots), a.Server.Certificate[0]) {
		t.Fatal("not serving the first certificate")
	}
	copyFile(t, b.ServerKeyFile, key)
	copyFile(t, b.ServerCertFile, cert)
	if !waitFor(5*time.Second, func() bool { return bytes.Equal(servedCert(t, api, roots), b.Server.Certificate[0]) }) {
		t.Fatalf("the replaced certificate is not served\n%s", d.log.String())
	}
	want := map[string]int{"over-tls-sdk": 1, "over-tls-cli": 1}
	if !waitFor(10*time.Second, func() bool { return fmt.Sprint(deliveredLines(t, filepath.Join(dir, "out"))) == fmt.Sprint(want) }) {
		t.Fatalf("delivered %v", deliveredLines(t, filepath.Join(dir, "out")))
	}
	if !strings.Contains(d.log.String(), "tls: certificate reloaded") {
		t.Fatal("the reload is not logged")
	}
}

// TestMutualTLS: with client_ca_file, a client without a certificate (or
// with one of another CA) is refused in the handshake; one with a
// certificate the CA signed is served.
func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	a, err := testcert.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	other, err := testcert.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	_, api := tlsDaemon(t, dir, a.ServerCertFile, a.ServerKeyFile, a.CAFile)
	post := func(certs []tls.Certificate) error {
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: a.Pool, Certificates: certs}}}
		resp, err := hc.Post("https://"+api+"/", "application/x-amz-json-1.1", strings.NewReader(`{}`))
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}
	if err := post(nil); err == nil {
		t.Fatal("a client without a certificate was served")
	}
	if err := post([]tls.Certificate{other.Client}); err == nil {
		t.Fatal("a client certificate of another CA was accepted")
	}
	if err := post([]tls.Certificate{a.Client}); err != nil {
		t.Fatalf("a client certificate of the CA: %v", err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestSecureExample runs examples/secure.yaml as shipped, its files and
// key from the environment: over TLS, the key puts to and describes
// secure; it is denied on secure-other; an unsigned call is refused.
func TestSecureExample(t *testing.T) {
	dir := t.TempDir()
	a, err := testcert.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	api, admin := freeAddr(t), freeAddr(t)
	cfg := exampleConfig(t, "secure.yaml", dir, api)
	// The daemon's readiness is polled on a plain admin listener.
	b := must(os.ReadFile(cfg))
	if err := os.WriteFile(cfg, append([]byte("admin_listen: "+admin+"\n"), b...), 0o644); err != nil {
		t.Fatal(err)
	}
	const id, secret = "AKIDSECUREEXAMPLE001", "secure-example-secret"
	d := startDaemonEnv(t, cfg, dir, admin, []string{"SLUICE_TLS_CERT=" + a.ServerCertFile, "SLUICE_TLS_KEY=" + a.ServerKeyFile,
		"SLUICE_ACCESS_KEY_ID=" + id, "SLUICE_SECRET_ACCESS_KEY=" + secret})
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: a.Pool}}}
	c := firehose.New(firehose.Options{Region: "us-east-1", BaseEndpoint: aws.String("https://" + api), HTTPClient: hc,
		Credentials: credentials.NewStaticCredentialsProvider(id, secret, ""), RetryMaxAttempts: 1})
	ctx := context.Background()
	if _, err := c.PutRecordBatch(ctx, &firehose.PutRecordBatchInput{DeliveryStreamName: aws.String("secure"),
		Records: []types.Record{{Data: []byte("secure-1")}, {Data: []byte("secure-2")}}}); err != nil {
		t.Fatalf("put to secure: %v", err)
	}
	if _, err := c.DescribeDeliveryStream(ctx, &firehose.DescribeDeliveryStreamInput{DeliveryStreamName: aws.String("secure")}); err != nil {
		t.Fatalf("describe secure: %v", err)
	}
	_, err = c.PutRecord(ctx, &firehose.PutRecordInput{DeliveryStreamName: aws.String("secure-other"), Record: &types.Record{Data: []byte("no")}})
	if got := apiCode(err); !strings.HasPrefix(got, "AccessDeniedException:") {
		t.Fatalf("put to secure-other: %s", got)
	}
	resp, err := hc.Post("https://"+api+"/", "application/x-amz-json-1.1", strings.NewReader(`{"DeliveryStreamName":"secure","Record":{"Data":"eA=="}}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatalf("an unsigned call: %d", resp.StatusCode)
	}
	want := map[string]int{"secure-1": 1, "secure-2": 1}
	if !waitFor(10*time.Second, func() bool { return fmt.Sprint(deliveredLines(t, filepath.Join(dir, "secure"))) == fmt.Sprint(want) }) {
		t.Fatalf("delivered %v\n%s", deliveredLines(t, filepath.Join(dir, "secure")), d.log.String())
	}
	if n := len(deliveredLines(t, filepath.Join(dir, "secure-other"))); n != 0 {
		t.Fatalf("%d records in secure-other", n)
	}
	if err := d.stop(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(d.log.String(), secret) {
		t.Fatal("the secret in the log")
	}
}
