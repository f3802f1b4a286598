package tunnel

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"time"
)

// Credential polling: how often the files are checked while missing, and
// how often the wait is logged again.
const (
	credPollInterval = time.Second
	credLogInterval  = time.Minute
)

// waitForCredentials returns the client TLS configuration once the CA and
// the kubelet client certificate and key can be loaded, logging while it
// waits (kubelet writes its client certificate after TLS bootstrap). It
// returns nil when ctx ends first.
func (a *Agent) waitForCredentials(ctx context.Context) *tls.Config {
	c := a.cfg
	var lastLog time.Time
	for {
		tlsConfig, err := clientTLSConfig(c.CACert, c.ClientCert, c.ClientKey, c.ServerHost)
		if err == nil {
			if !lastLog.IsZero() {
				a.log.Info("kubelet client certificate found", "cert", c.ClientCert)
			}
			return tlsConfig
		}
		if time.Since(lastLog) >= credLogInterval {
			a.log.Info("tunnel waits for the kubelet client certificate (written by kubelet TLS bootstrap)",
				"cert", c.ClientCert, "key", c.ClientKey, "ca", c.CACert, "reason", err)
			lastLog = time.Now()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(credPollInterval):
		}
	}
}

// clientTLSConfig verifies the server against the CA and presents the
// client certificate, read again from disk on every handshake so that a
// rotated kubelet certificate is used on the next reconnect. It fails when
// the files cannot be loaded now.
func clientTLSConfig(caFile, certFile, keyFile, serverName string) (*tls.Config, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("read cluster CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("cluster CA %s holds no PEM certificate", caFile)
	}
	load := func() (*tls.Certificate, error) {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("load kubelet client certificate %s / key %s: %w", certFile, keyFile, err)
		}
		return &cert, nil
	}
	if _, err := load(); err != nil {
		return nil, err
	}
	return &tls.Config{
		RootCAs:    pool,
		ServerName: serverName,
		MinVersion: tls.VersionTLS12,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return load()
		},
	}, nil
}
