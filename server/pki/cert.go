package pki

import (
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/iks-dev/iks/internal/fsutil"
)

// leafSpec describes one leaf certificate and the CA that signs it.
type leafSpec struct {
	certPath string
	keyPath  string
	ca       *authority
	cn       string
	orgs     []string
	dnsNames []string
	ips      []net.IP
	server   bool          // ExtKeyUsageServerAuth
	client   bool          // ExtKeyUsageClientAuth
	validity time.Duration // 0: leafValidity
}

func (s *leafSpec) extKeyUsages() []x509.ExtKeyUsage {
	var u []x509.ExtKeyUsage
	if s.server {
		u = append(u, x509.ExtKeyUsageServerAuth)
	}
	if s.client {
		u = append(u, x509.ExtKeyUsageClientAuth)
	}
	return u
}

// ensureLeaf makes sure the leaf described by s exists and is current. An
// existing certificate is kept byte-for-byte unless it is missing, damaged,
// not signed by s.ca, expiring within renewBefore, or lacks the requested
// subject, usages or SANs; then it is re-issued by the same CA, reusing the
// existing key when that key is intact.
func ensureLeaf(s *leafSpec, now time.Time, log *slog.Logger) error {
	reason, key, err := checkLeaf(s, now)
	if err != nil {
		return err
	}
	if reason == "" {
		log.Debug("reusing certificate", "cert", s.certPath)
		return nil
	}
	log.Info("issuing certificate", "cert", s.certPath, "cn", s.cn, "signer", s.ca.label, "reason", reason)
	if key == nil {
		ecKey, err := newKey()
		if err != nil {
			return fmt.Errorf("issue %s: %w", s.certPath, err)
		}
		keyPEM, err := encodeKeyPEM(ecKey)
		if err != nil {
			return fmt.Errorf("issue %s: %w", s.certPath, err)
		}
		// Key first: a crash before the certificate is written leaves a
		// mismatched pair, which the next run detects and re-issues.
		if err := fsutil.WriteFileAtomic(s.keyPath, keyPEM, keyMode); err != nil {
			return err
		}
		key = ecKey
	}
	serial, err := randomSerial()
	if err != nil {
		return fmt.Errorf("issue %s: %w", s.certPath, err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: s.cn, Organization: slices.Clone(s.orgs)},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(s.lifetime()),
		KeyUsage:              leafKeyUsage(key),
		ExtKeyUsage:           s.extKeyUsages(),
		BasicConstraintsValid: true,
		DNSNames:              slices.Clone(s.dnsNames),
		IPAddresses:           slices.Clone(s.ips),
	}
	der, err := s.ca.sign(tmpl, key.Public())
	if err != nil {
		return fmt.Errorf("issue %s: %w", s.certPath, err)
	}
	return fsutil.WriteFileAtomic(s.certPath, encodeCertPEM(der), certMode)
}

// lifetime is how long a new certificate is valid.
func (s *leafSpec) lifetime() time.Duration {
	if s.validity > 0 {
		return s.validity
	}
	return leafValidity
}

// leafKeyUsage is DigitalSignature, plus KeyEncipherment for RSA keys (RSA
// key exchange); the ECDSA keys this package generates only sign.
func leafKeyUsage(key crypto.Signer) x509.KeyUsage {
	if _, ok := key.Public().(*rsa.PublicKey); ok {
		return x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
	}
	return x509.KeyUsageDigitalSignature
}

// checkLeaf returns why the leaf must be (re-)issued, or "" when the files
// on disk can be kept, plus the existing key if it is intact and reusable.
// Only I/O errors other than "not found" are returned as errors.
func checkLeaf(s *leafSpec, now time.Time) (reason string, key crypto.Signer, err error) {
	certPEM, haveCert, err := readOptional(s.certPath)
	if err != nil {
		return "", nil, err
	}
	keyPEM, haveKey, err := readOptional(s.keyPath)
	if err != nil {
		return "", nil, err
	}
	switch {
	case !haveCert && !haveKey:
		return "new", nil, nil
	case !haveKey:
		return "key " + s.keyPath + " is missing", nil, nil
	}
	key, err = parseKeyPEM(keyPEM)
	if err != nil {
		return fmt.Sprintf("key %s is unparsable (%v)", s.keyPath, err), nil, nil
	}
	if !haveCert {
		return "certificate is missing", key, nil
	}
	cert, err := parseCertPEM(certPEM)
	if err != nil {
		return fmt.Sprintf("certificate is unparsable (%v)", err), key, nil
	}
	if !keyMatches(key, cert.PublicKey) {
		return "key " + s.keyPath + " does not match the certificate", key, nil
	}
	if err := cert.CheckSignatureFrom(s.ca.cert); err != nil {
		return "not signed by the current " + s.ca.label, key, nil
	}
	if now.Add(renewBefore).After(cert.NotAfter) {
		return "expires at " + cert.NotAfter.UTC().Format(time.RFC3339), key, nil
	}
	if cert.Subject.CommonName != s.cn || !sameStrings(cert.Subject.Organization, s.orgs) {
		return fmt.Sprintf("subject changed (have CN=%q O=%q)", cert.Subject.CommonName, cert.Subject.Organization), key, nil
	}
	for _, u := range s.extKeyUsages() {
		if !slices.Contains(cert.ExtKeyUsage, u) {
			return "missing extended key usage", key, nil
		}
	}
	if missing := missingSANs(cert, s.dnsNames, s.ips); len(missing) > 0 {
		return "missing SANs " + strings.Join(missing, ","), key, nil
	}
	return "", key, nil
}

// missingSANs lists the requested DNS names and IPs that cert does not carry.
func missingSANs(cert *x509.Certificate, dnsNames []string, ips []net.IP) []string {
	var missing []string
	for _, name := range dnsNames {
		if !slices.ContainsFunc(cert.DNSNames, func(have string) bool { return strings.EqualFold(have, name) }) {
			missing = append(missing, name)
		}
	}
	for _, ip := range ips {
		if !slices.ContainsFunc(cert.IPAddresses, ip.Equal) {
			missing = append(missing, ip.String())
		}
	}
	return missing
}

// sameStrings reports whether a and b hold the same strings in any order.
func sameStrings(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
