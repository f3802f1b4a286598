package vpnconn

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"
)

// checkAuth reads ipsec.authby and the credentials it needs, and the
// identities' defaults: as the chart for pre-shared keys; with
// certificates local.id defaults to the certificate's subject (charon's
// default when no id is given) and remote.id to %any (any certificate
// the CA in the Secret signed).
func (p *Plan) checkAuth(spec Spec) []error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	switch a := strings.ToLower(or(spec.IPsec.AuthBy, DefaultAuthBy)); a {
	case "psk", "secret":
		p.Auth = AuthPSK
	case "pubkey", "rsasig", "ecdsasig":
		p.Auth = AuthPubkey
	default:
		bad("ipsec.authby %q: use psk (pre-shared key, default) or pubkey (certificates)", spec.IPsec.AuthBy)
		return errs
	}
	if p.Auth == AuthPSK {
		if p.SecretName == "" {
			bad("preshared.secretName is empty: create a Secret in %s with the pre-shared key under %q and name it here", Namespace, p.SecretKey)
		}
		if spec.Certificate.SecretName != "" {
			bad("certificate.secretName %q is set but ipsec.authby is psk: set ipsec.authby to pubkey to authenticate with the certificate, or remove certificate", spec.Certificate.SecretName)
		}
		return errs
	}
	p.CertSecret = strings.TrimSpace(spec.Certificate.SecretName)
	if p.CertSecret == "" {
		bad("ipsec.authby pubkey needs certificate.secretName: create a Secret in %s with %s, %s and %s (the CA of the remote's certificate) and name it here",
			Namespace, CertKey, KeyKey, CAKey)
	}
	if spec.Preshared.SecretName != "" {
		bad("preshared.secretName %q is set but ipsec.authby is pubkey: remove preshared, or set ipsec.authby to psk", spec.Preshared.SecretName)
	}
	p.SecretName, p.SecretKey = "", ""
	p.LocalID = strings.TrimSpace(spec.Local.ID) // empty: the certificate's subject
	p.RemoteID = or(spec.Remote.ID, "%any")
	return errs
}

// UsesCertificates reports whether p authenticates with certificates.
func (p *Plan) UsesCertificates() bool { return p.Auth == AuthPubkey }

// CheckCredentials checks a certificate Secret's data: tls.crt and
// tls.key present and a matching pair, ca.crt one or more certificates.
func CheckCredentials(secret string, data map[string][]byte) error {
	var missing []string
	for _, k := range []string{CertKey, KeyKey, CAKey} {
		if len(data[k]) == 0 {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("certificate: Secret %s/%s has no %s: it needs %s (the cluster's certificate), %s (its private key) and %s (the CA of the remote's certificate)",
			Namespace, secret, strings.Join(missing, ", "), CertKey, KeyKey, CAKey)
	}
	if _, err := tls.X509KeyPair(data[CertKey], data[KeyKey]); err != nil {
		return fmt.Errorf("certificate: Secret %s/%s: %s and %s are not a certificate and its private key in PEM: %w", Namespace, secret, CertKey, KeyKey, err)
	}
	cas, err := pemBlocks(CAKey, data[CAKey], "CERTIFICATE")
	if err == nil {
		for _, c := range cas {
			b, _ := pem.Decode([]byte(c))
			if _, err = x509.ParseCertificate(b.Bytes); err != nil {
				break
			}
		}
	}
	if err != nil {
		return fmt.Errorf("certificate: Secret %s/%s: %s is not a PEM CA certificate: %w", Namespace, secret, CAKey, err)
	}
	cred := Credentials{Cert: data[CertKey], Key: data[KeyKey], CA: data[CAKey]}
	if _, err := cred.LoadKey(); err != nil {
		return fmt.Errorf("certificate: Secret %s/%s: %w", Namespace, secret, err)
	}
	return nil
}
