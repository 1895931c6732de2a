package elasticsearch

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/deploy/testpeers/esbulk"
	"github.com/sluice-dev/sluice/deploy/testpeers/testcert"
	"github.com/sluice-dev/sluice/pipeline"
)

// TestTLSWithClientCertificate: a cluster that demands a client
// certificate takes documents from a destination with the CA and the
// certificate; without the certificate, or without the CA, the handshake
// fails, Deliver is retryable and Ready names the cause.
func TestTLSWithClientCertificate(t *testing.T) {
	ca, err := testcert.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, esbulk.Config{TLS: ca.ServerConfig(true)})
	if !strings.HasPrefix(e.srv.URL(), "https://") {
		t.Fatalf("server URL %s", e.srv.URL())
	}
	o := e.opts()
	o.TLS = TLSOptions{CAFile: ca.CAFile, CertFile: ca.ClientCertFile, KeyFile: ca.ClientKeyFile}
	d := e.dest(o)
	if err := d.Ready(context.Background()); err != nil {
		t.Fatalf("Ready with CA and client certificate: %v", err)
	}
	b := docs(10, t0)
	if err := deliver(t, d, b); err != nil {
		t.Fatalf("Deliver with CA and client certificate: %v", err)
	}
	if n := len(e.srv.Docs("logs-2016-02-25")); n != 10 {
		t.Fatalf("%d documents indexed, want 10", n)
	}

	for _, tc := range []struct {
		name string
		tls  TLSOptions
		want string
	}{
		{"no client certificate", TLSOptions{CAFile: ca.CAFile}, "certificate required"},
		{"no CA", TLSOptions{CertFile: ca.ClientCertFile, KeyFile: ca.ClientKeyFile}, "certificate signed by unknown authority"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := e.opts()
			o.TLS = tc.tls
			d := e.dest(o)
			if err := d.Ready(context.Background()); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Ready = %v, want %q", err, tc.want)
			}
			err := deliver(t, d, docs(1, t0))
			if err == nil || !pipeline.IsRetryable(err) {
				t.Errorf("Deliver = %v, want a retryable error", err)
			}
		})
	}
	if n := len(e.srv.Docs("logs-2016-02-25")); n != 10 {
		t.Errorf("%d documents indexed after the refused handshakes, want 10", n)
	}
}

// TestTLSFileErrors: unreadable or empty TLS files stop New with the key
// that names them.
func TestTLSFileErrors(t *testing.T) {
	dir := t.TempDir()
	ca, err := testcert.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		tls  TLSOptions
		want string
	}{
		{TLSOptions{CAFile: filepath.Join(dir, "missing.pem")}, "tls.ca_file"},
		{TLSOptions{CAFile: notPEM}, "tls.ca_file"},
		{TLSOptions{CertFile: notPEM, KeyFile: ca.ClientKeyFile}, "tls.cert_file"},
		{TLSOptions{CertFile: ca.ClientCertFile, KeyFile: ca.ServerKeyFile}, "tls.cert_file"},
	} {
		o := DefaultOptions()
		o.Addresses, o.Index, o.TLS = []string{"https://127.0.0.1:9"}, "logs", tc.tls
		cfg, err := Compile(o)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := New(context.Background(), cfg, "s", pipeline.Deps{}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New with %+v = %v, want an error naming %s", tc.tls, err, tc.want)
		}
	}
}

// TestCredentialsFromFiles: a password, an API key and a bearer token read
// from files (with the trailing newline editors leave) authenticate
// against a cluster that demands them; a wrong secret is a 401 that Ready
// reports, and no secret shows in any error or description.
func TestCredentialsFromFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("elastic:pw-SECRET-1"))
	e := newEnv(t, esbulk.Config{Authorization: []string{basic, "ApiKey key-SECRET-2", "Bearer tok-SECRET-3"}})
	for _, tc := range []struct {
		name string
		set  func(o *Options, good bool)
	}{
		{"password_file", func(o *Options, good bool) {
			o.Username = "elastic"
			o.PasswordFile = write("password", map[bool]string{true: "pw-SECRET-1", false: "pw-SECRET-wrong"}[good])
		}},
		{"api_key_file", func(o *Options, good bool) {
			o.APIKeyFile = write("api-key", map[bool]string{true: "key-SECRET-2", false: "key-SECRET-wrong"}[good])
		}},
		{"bearer_token_file", func(o *Options, good bool) {
			o.BearerTokenFile = write("token", map[bool]string{true: "tok-SECRET-3", false: "tok-SECRET-wrong"}[good])
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := e.opts()
			tc.set(&o, true)
			d := e.dest(o)
			if err := d.Ready(context.Background()); err != nil {
				t.Fatalf("Ready: %v", err)
			}
			b := docs(3, t0)
			if err := deliver(t, d, b); err != nil {
				t.Fatalf("Deliver: %v", err)
			}
			for _, r := range b.Records {
				if _, ok := e.srv.Doc("logs-2016-02-25", r.ID); !ok {
					t.Errorf("document %s not indexed", r.ID)
				}
			}

			o = e.opts()
			tc.set(&o, false)
			bad := e.dest(o)
			rerr := bad.Ready(context.Background())
			if rerr == nil || !strings.Contains(rerr.Error(), "401") {
				t.Errorf("Ready with a wrong secret = %v, want a 401", rerr)
			}
			derr := deliver(t, bad, docs(1, t0))
			if !pipeline.IsRetryable(derr) {
				t.Errorf("Deliver with a wrong secret = %v, want retryable", derr)
			}
			cfg, _ := Compile(o)
			if out := strings.Join([]string{rerr.Error(), derr.Error(), fmtAll(cfg, bad)}, " "); strings.Contains(out, "SECRET") {
				t.Errorf("a secret is shown: %s", out)
			}
		})
	}
}

// TestOpenSearchFlavorOverTLS: the opensearch flavor (its own transport)
// uses the same TLS and credentials.
func TestOpenSearchFlavorOverTLS(t *testing.T) {
	ca, err := testcert.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, esbulk.Config{OpenSearch: true, TLS: ca.ServerConfig(true), Authorization: []string{"ApiKey key-SECRET"}})
	o := e.opts()
	o.Flavor, o.APIKey = FlavorOpenSearch, "key-SECRET"
	o.TLS = TLSOptions{CAFile: ca.CAFile, CertFile: ca.ClientCertFile, KeyFile: ca.ClientKeyFile}
	d := e.dest(o)
	if err := deliver(t, d, docs(4, t0)); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	if n := len(e.srv.Docs("logs-2016-02-25")); n != 4 {
		t.Fatalf("%d documents indexed, want 4", n)
	}
}

// fmtAll prints a config and a destination every way they print.
func fmtAll(cfg *Config, d *Destination) string {
	return fmt.Sprintf("%v %+v %#v %v %+v", cfg, cfg, cfg, cfg.LogValue(), d)
}
