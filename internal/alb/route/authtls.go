package route

import (
	"crypto/x509"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
)

// Client certificate modes (auth-tls-verify-client).
const (
	VerifyOn           = "on"
	VerifyOptional     = "optional"
	VerifyOptionalNoCA = "optional_no_ca"
	VerifyOff          = "off"
)

// ClientAuth is TLS client certificate authentication (auth-tls-secret):
// the ALB asks for a client certificate on the hosts of the Ingress and
// checks it against the CA of the Secret's ca.crt, answering 400 as
// nginx does when it is required and missing, or invalid.
type ClientAuth struct {
	Secret string // namespace/name
	Mode   string // one of the Verify constants
	// Depth is auth-tls-verify-depth: the most certificates between the
	// client's and the CA (1: signed by the CA itself).
	Depth int
	// PassCert sends the client certificate (URL-escaped PEM) to the
	// backend in the ssl-client-cert header.
	PassCert bool
	roots    *x509.CertPool
	// checked caches the verdict per leaf certificate (one per TLS
	// connection, which sends it once): true valid, false invalid.
	checked sync.Map
	nchk    int
	mu      sync.Mutex
}

// Result is a client certificate check: HTTP status 0 to go on, or the
// status and message to answer; Verify is ssl-client-verify's value.
type Result struct {
	Status  int
	Message string
	Verify  string
}

// Check verifies the request's client certificate.
func (c *ClientAuth) Check(r *http.Request) Result {
	var leaf *x509.Certificate
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		leaf = r.TLS.PeerCertificates[0]
	}
	if leaf == nil {
		if c.Mode == VerifyOn {
			return Result{Status: http.StatusBadRequest, Message: "400 Bad Request: no required SSL certificate was sent", Verify: "NONE"}
		}
		return Result{Verify: "NONE"}
	}
	if c.Mode == VerifyOptionalNoCA {
		return Result{Verify: "SUCCESS"}
	}
	if !c.valid(leaf, r.TLS.PeerCertificates[1:]) {
		return Result{Status: http.StatusBadRequest, Message: "400 Bad Request: the SSL certificate error", Verify: "FAILED"}
	}
	return Result{Verify: "SUCCESS"}
}

func (c *ClientAuth) valid(leaf *x509.Certificate, rest []*x509.Certificate) bool {
	if v, ok := c.checked.Load(leaf); ok {
		return v.(bool)
	}
	inter := x509.NewCertPool()
	for _, ic := range rest {
		inter.AddCert(ic)
	}
	chains, _ := leaf.Verify(x509.VerifyOptions{Roots: c.roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	ok := false
	for _, ch := range chains {
		// A chain is leaf, intermediates, root: depth counts the
		// certificates above the leaf.
		if len(ch)-1 <= c.Depth {
			ok = true
		}
	}
	c.mu.Lock()
	if c.nchk++; c.nchk > 10000 {
		c.checked.Clear()
		c.nchk = 0
	}
	c.mu.Unlock()
	c.checked.Store(leaf, ok)
	return ok
}

// parseClientAuth reads auth-tls-* annotations; secret finds the Secret.
func parseClientAuth(ann map[string]string, ns string, secret func(ns, name string) *corev1.Secret, bad func(k, v, want string)) *ClientAuth {
	v, ok := ann[AnnotationPrefix+"auth-tls-secret"]
	if !ok {
		return nil
	}
	v = strings.TrimSpace(v)
	sns, name, found := strings.Cut(v, "/")
	if !found {
		sns, name = ns, v
	}
	if sns == "" || name == "" || strings.Contains(name, "/") {
		bad("auth-tls-secret", v, "use NAMESPACE/SECRET naming a Secret with the CA in ca.crt")
		return nil
	}
	c := &ClientAuth{Secret: sns + "/" + name, Mode: VerifyOn, Depth: 1}
	if m, ok := ann[AnnotationPrefix+"auth-tls-verify-client"]; ok {
		switch m = strings.TrimSpace(m); m {
		case VerifyOn, VerifyOptional, VerifyOptionalNoCA, VerifyOff:
			c.Mode = m
		default:
			bad("auth-tls-verify-client", m, "use on, optional, optional_no_ca or off; on is used")
		}
	}
	if d, ok := ann[AnnotationPrefix+"auth-tls-verify-depth"]; ok {
		n, err := strconv.Atoi(strings.TrimSpace(d))
		if err != nil || n < 1 || n > 10 {
			bad("auth-tls-verify-depth", d, "use a number from 1 to 10; 1 is used")
		} else {
			c.Depth = n
		}
	}
	if p, ok := ann[AnnotationPrefix+"auth-tls-pass-certificate-to-upstream"]; ok {
		b, err := strconv.ParseBool(strings.TrimSpace(p))
		if err != nil {
			bad("auth-tls-pass-certificate-to-upstream", p, `use "true" or "false"`)
		}
		c.PassCert = b
	}
	if c.Mode == VerifyOff {
		return nil
	}
	s := secret(sns, name)
	if s == nil {
		bad("auth-tls-secret", v, fmt.Sprintf("Secret %s/%s does not exist: create it with the CA certificate in ca.crt; until then client certificates cannot be verified (400)", sns, name))
		c.roots = x509.NewCertPool()
		return c
	}
	c.roots = x509.NewCertPool()
	if !c.roots.AppendCertsFromPEM(s.Data["ca.crt"]) {
		bad("auth-tls-secret", v, fmt.Sprintf("Secret %s/%s has no PEM certificate in ca.crt; until it does client certificates are refused with 400", sns, name))
	}
	return c
}
