package proxy

import (
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"net/netip"
	"net/url"

	"github.com/iks-dev/iks/internal/alb/route"
)

// withinLimits takes one request of the client at remote from each
// limiter and reports whether all allow it; exempt clients
// (limit-whitelist) are not counted.
func withinLimits(ls []*route.Limiter, exempt []netip.Prefix, remote string) bool {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return true
	}
	a, now, ok := ap.Addr().Unmap(), route.Now(), true
	for _, p := range exempt {
		if p.Contains(a) {
			return true
		}
	}
	for _, l := range ls {
		if !l.Allow(a, now) {
			ok = false
		}
	}
	return ok
}

// clientAuth checks the client certificate (auth-tls-secret) and either
// answers 400 and returns false, or sets ingress-nginx's ssl-client-*
// headers for the backend (replacing any the client sent).
func clientAuth(w http.ResponseWriter, r *http.Request, ca *route.ClientAuth) bool {
	res := ca.Check(r)
	if res.Status != 0 {
		http.Error(w, res.Message, res.Status)
		return false
	}
	hd := r.Header
	hd.Set("Ssl-Client-Verify", res.Verify)
	hd.Del("Ssl-Client-Subject-Dn")
	hd.Del("Ssl-Client-Issuer-Dn")
	hd.Del("Ssl-Client-Cert")
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return true
	}
	leaf := r.TLS.PeerCertificates[0]
	hd.Set("Ssl-Client-Subject-Dn", leaf.Subject.String())
	hd.Set("Ssl-Client-Issuer-Dn", leaf.Issuer.String())
	if ca.PassCert {
		hd.Set("Ssl-Client-Cert", url.QueryEscape(string(pemOf(leaf))))
	}
	return true
}

func pemOf(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}
