// Package bootstrap joins an agent to a cluster with a join token.
//
// [Verify] proves, before the token's secret leaves the machine, that the
// server belongs to the cluster the token pins: the server's TLS handshake
// must present a certificate whose SHA-256 equals the token's CA hash, and
// the server's own certificate must verify against that CA alone. Only
// then is the bootstrap token sent, over a connection that trusts only
// that CA, to check that the server accepts it. [Join] retries while the
// server is unreachable and, once verified, writes the CA and a bootstrap
// kubeconfig for kubelet's TLS bootstrap.
package bootstrap

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	token "github.com/iks-dev/iks/internal/jointoken"
)

// Errors Join does not retry; match them with errors.Is.
var (
	// ErrCAMismatch: the server does not present the CA the token pins.
	ErrCAMismatch = errors.New("CA mismatch")
	// ErrTokenRejected: the server answered 401 to the token.
	ErrTokenRejected = errors.New("token rejected")
	// ErrUntrustedServer: the server presents the pinned CA but its own
	// certificate does not verify against it for the URL's host.
	ErrUntrustedServer = errors.New("server certificate not trusted")
)

// requestTimeout bounds each network step of Verify.
const requestTimeout = 10 * time.Second

// transientError marks failures worth retrying (network, 5xx).
type transientError struct{ err error }

func (e *transientError) Error() string { return e.err.Error() }
func (e *transientError) Unwrap() error { return e.err }

func transient(format string, a ...any) error { return &transientError{fmt.Errorf(format, a...)} }

// isTransient reports whether err is worth retrying.
func isTransient(err error) bool {
	var t *transientError
	return errors.As(err, &t)
}

// ParseToken parses a join token (see token.Parse).
func ParseToken(s string) (token.Token, error) { return token.Parse(s) }

// Verify checks that the server at serverURL (https://host:port) holds the
// CA that tok pins and accepts tok, and returns that CA as PEM.
func Verify(ctx context.Context, serverURL string, tok token.Token) (caPEM []byte, err error) {
	if err := tok.Validate(); err != nil {
		return nil, err
	}
	u, err := parseServerURL(serverURL)
	if err != nil {
		return nil, err
	}
	ca, err := pinnedCA(ctx, u, tok.CAHash)
	if err != nil {
		return nil, err
	}
	caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw})
	if err := checkToken(ctx, u, ca, tok); err != nil {
		return nil, err
	}
	return caPEM, nil
}

// parseServerURL accepts https://host[:port] with no path beyond "/".
func parseServerURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "https" || u.Hostname() == "" || (u.Path != "" && u.Path != "/") || u.User != nil {
		return nil, fmt.Errorf("server URL %q is not of the form https://HOST:6443: pass the server's address as --server", s)
	}
	u.Path = ""
	return u, nil
}

// hostPort returns u's host:port, 443 by default as for any https URL.
func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	return net.JoinHostPort(u.Hostname(), "443")
}

// pinnedCA completes a TLS handshake without verification, finds the
// presented certificate whose SHA-256 is caHash and verifies the server's
// certificate against it as the only root.
func pinnedCA(ctx context.Context, u *url.URL, caHash string) (*x509.Certificate, error) {
	d := &tls.Dialer{
		NetDialer: &net.Dialer{Timeout: requestTimeout},
		// Verification is done below, against the pinned CA only; nothing
		// is sent over this connection.
		Config: &tls.Config{InsecureSkipVerify: true, ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}, //nolint:gosec // see above
	}
	dctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	conn, err := d.DialContext(dctx, "tcp", hostPort(u))
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var rec tls.RecordHeaderError
		if errors.As(err, &rec) {
			return nil, fmt.Errorf("the server at %s does not speak TLS: %w; use the apiserver's https address, e.g. https://HOST:6443", u, err)
		}
		return nil, transient("server %s unreachable: %w", u, err)
	}
	state := conn.(*tls.Conn).ConnectionState()
	_ = conn.Close()
	chain := state.PeerCertificates
	if len(chain) == 0 {
		return nil, fmt.Errorf("the server at %s presented no certificate", u)
	}
	var ca *x509.Certificate
	intermediates := x509.NewCertPool()
	for i, c := range chain {
		switch {
		case certHash(c) == caHash:
			ca = c
		case i > 0:
			intermediates.AddCert(c)
		}
	}
	if ca == nil {
		presented := "no CA certificate (only its own, issued by " + quoteCN(chain[0].Issuer.CommonName) + ")"
		if len(chain) > 1 {
			presented = "CA " + short(certHash(chain[len(chain)-1]))
		}
		return nil, fmt.Errorf("%w: the server at %s presents %s but the token pins %s: the token belongs to another cluster "+
			"(or --server points at the wrong host); get a token from this server with `iks token create`",
			ErrCAMismatch, u, presented, short(caHash))
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	if _, err := chain[0].Verify(x509.VerifyOptions{
		Roots: roots, Intermediates: intermediates, DNSName: u.Hostname(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}); err != nil {
		return nil, fmt.Errorf("%w: the server at %s presents the pinned CA %s but its certificate does not verify against it "+
			"for %q: %v; use a --server address that is in the server certificate (add it with the server's --tls-san)",
			ErrUntrustedServer, u, short(caHash), u.Hostname(), err)
	}
	return ca, nil
}

// checkToken sends the bootstrap token to GET /api over a client that
// trusts only ca and interprets the answer.
func checkToken(ctx context.Context, u *url.URL, ca *x509.Certificate, tok token.Token) error {
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	client := &http.Client{
		Timeout: requestTimeout,
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: roots, ServerName: u.Hostname(), MinVersion: tls.VersionTLS12},
			Proxy:             nil, // the CA pin covers the server, not a proxy
			DisableKeepAlives: true,
		},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String()+"/api", nil)
	if err != nil {
		return fmt.Errorf("build request to %s: %w", u, err)
	}
	req.Header.Set("Authorization", "Bearer "+tok.Bootstrap())
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return transient("server %s unreachable: %w", u, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode == http.StatusOK:
		var v struct {
			Kind string `json:"kind"`
		}
		if json.Unmarshal(body, &v) != nil || v.Kind != "APIVersions" {
			return fmt.Errorf("the server at %s answered GET /api without an APIVersions object: is it a Kubernetes apiserver?", u)
		}
		return nil
	case resp.StatusCode == http.StatusUnauthorized:
		return fmt.Errorf("%w: the server at %s rejected the token %s (wrong, expired or deleted): "+
			"create a new one on the server with `iks token create`", ErrTokenRejected, u, tok.ID)
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusForbidden:
		// Starting apiservers answer 5xx, and 403 until RBAC is in place.
		return transient("server %s is not ready: GET /api answered %s", u, resp.Status)
	default:
		return fmt.Errorf("the server at %s answered GET /api with %s: is it an iks server?", u, resp.Status)
	}
}

// certHash is the token CA hash of a certificate.
func certHash(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}

// short abbreviates a hash for messages.
func short(h string) string {
	if len(h) <= 16 {
		return h
	}
	return h[:16] + "…"
}

func quoteCN(cn string) string {
	if cn == "" {
		return "an unnamed issuer"
	}
	return fmt.Sprintf("%q", cn)
}
