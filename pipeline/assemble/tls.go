package assemble

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/sluice-dev/sluice/config"
)

// certCheckInterval is how often, at most, a handshake looks for new
// certificate files.
const certCheckInterval = time.Second

// certLoader serves a listener's certificate and reloads it when its
// files change on disk: the first handshake after a change (checked at
// most every certCheckInterval) gets the new one, with no restart. A
// change that does not load (a half-written pair) keeps the old
// certificate and is logged; the next check tries again.
type certLoader struct {
	certFile, keyFile string
	log               *slog.Logger

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   string
	checked time.Time
}

func newCertLoader(certFile, keyFile string, log *slog.Logger) (*certLoader, error) {
	c := &certLoader{certFile: certFile, keyFile: keyFile, log: log}
	stamp, err := c.stampNow()
	if err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	c.cert, c.stamp, c.checked = &cert, stamp, time.Now()
	return c, nil
}

// stampNow identifies the files' current contents by size and time.
func (c *certLoader) stampNow() (string, error) {
	var s string
	for _, f := range []string{c.certFile, c.keyFile} {
		fi, err := os.Stat(f)
		if err != nil {
			return "", fmt.Errorf("tls: %w", err)
		}
		s += fmt.Sprintf("%d.%d;", fi.Size(), fi.ModTime().UnixNano())
	}
	return s, nil
}

func (c *certLoader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.checked) < certCheckInterval {
		return c.cert, nil
	}
	c.checked = time.Now()
	stamp, err := c.stampNow()
	if err != nil || stamp == c.stamp {
		return c.cert, nil
	}
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		c.log.Warn("tls: the certificate files changed but do not load; serving the previous certificate", "cert_file", c.certFile, "err", err)
		return c.cert, nil
	}
	c.cert, c.stamp = &cert, stamp
	c.log.Info("tls: certificate reloaded", "cert_file", c.certFile)
	return c.cert, nil
}

// tlsConfig builds a listener's TLS from its block: nil without one.
// TLS 1.2 at least; with a client CA, clients must present a certificate
// it signed (mutual TLS).
func tlsConfig(t config.TLS, log *slog.Logger) (*tls.Config, error) {
	if t.CertFile == "" {
		return nil, nil
	}
	loader, err := newCertLoader(t.CertFile, t.KeyFile, log)
	if err != nil {
		return nil, err
	}
	// NextProtos as http.Server.ServeTLS sets them, which it cannot do on
	// the configurations a listener hands out per handshake.
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: loader.get, NextProtos: []string{"h2", "http/1.1"}}
	if t.ClientCAFile != "" {
		pem, err := os.ReadFile(t.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("tls: client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls: client CA %s holds no PEM certificate", t.ClientCAFile)
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}
