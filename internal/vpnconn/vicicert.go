package vpnconn

import (
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/strongswan/govici/vici"
)

// Credentials are the certificate material of an ipsec.authby pubkey
// connection, PEM as in the certificate Secret.
type Credentials struct {
	Cert, Key, CA []byte
}

// setAuth fills the local and remote auth sections: a pre-shared key
// bound to the identities, or the cluster's certificate (the first of
// tls.crt; charon finds its key among the loaded ones) and the remote
// constrained to certificates of the CA in ca.crt.
func (p *Plan) setAuth(local, remote *vici.Message, cred *Credentials) error {
	set := func(m *vici.Message, k string, v any) error {
		if err := m.Set(k, v); err != nil {
			return fmt.Errorf("vici message %s: %w", k, err)
		}
		return nil
	}
	if !p.UsesCertificates() {
		return errors.Join(set(local, "auth", "psk"), set(local, "id", p.LocalID),
			set(remote, "auth", "psk"), set(remote, "id", p.RemoteID))
	}
	if cred == nil {
		return errors.New("ipsec.authby pubkey: no certificate given")
	}
	certs, err := pemBlocks(CertKey, cred.Cert, "CERTIFICATE")
	if err != nil {
		return err
	}
	cas, err := pemBlocks(CAKey, cred.CA, "CERTIFICATE")
	if err != nil {
		return err
	}
	errs := []error{set(local, "auth", "pubkey"), set(local, "certs", certs[:1]),
		set(remote, "auth", "pubkey"), set(remote, "id", p.RemoteID), set(remote, "cacerts", cas)}
	if p.LocalID != "" {
		errs = append(errs, set(local, "id", p.LocalID))
	}
	return errors.Join(errs...)
}

// LoadCerts are the VICI load-cert messages of the CA certificates
// (trusted: flag CA) and of the intermediates following the cluster's
// certificate in tls.crt.
func (cred *Credentials) LoadCerts() ([]*vici.Message, error) {
	certs, err := pemBlocks(CertKey, cred.Cert, "CERTIFICATE")
	if err != nil {
		return nil, err
	}
	cas, err := pemBlocks(CAKey, cred.CA, "CERTIFICATE")
	if err != nil {
		return nil, err
	}
	var out []*vici.Message
	add := func(flag, data string) error {
		m := vici.NewMessage()
		for _, kv := range [][2]string{{"type", "X509"}, {"flag", flag}, {"data", data}} {
			if err := m.Set(kv[0], kv[1]); err != nil {
				return fmt.Errorf("vici load-cert %s: %w", kv[0], err)
			}
		}
		out = append(out, m)
		return nil
	}
	for _, c := range cas {
		if err := add("CA", c); err != nil {
			return nil, err
		}
	}
	for _, c := range certs {
		if err := add("NONE", c); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// LoadKey is the VICI load-key message of the private key in tls.key.
func (cred *Credentials) LoadKey() (*vici.Message, error) {
	b, _ := pem.Decode(cred.Key)
	if b == nil {
		return nil, fmt.Errorf("%s holds no PEM block: give the private key in PEM", KeyKey)
	}
	typ := "any" // PKCS#8
	switch b.Type {
	case "RSA PRIVATE KEY":
		typ = "rsa"
	case "EC PRIVATE KEY":
		typ = "ecdsa"
	case "PRIVATE KEY":
	default:
		return nil, fmt.Errorf("%s is a PEM %q: give an unencrypted RSA, EC or PKCS#8 private key", KeyKey, b.Type)
	}
	m := vici.NewMessage()
	for _, kv := range [][2]string{{"type", typ}, {"data", string(pem.EncodeToMemory(b))}} {
		if err := m.Set(kv[0], kv[1]); err != nil {
			return nil, fmt.Errorf("vici load-key %s: %w", kv[0], err)
		}
	}
	return m, nil
}

// pemBlocks splits PEM data into its blocks of type typ, each re-encoded.
func pemBlocks(field string, data []byte, typ string) ([]string, error) {
	var out []string
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type == typ {
			out = append(out, string(pem.EncodeToMemory(b)))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s holds no PEM %s", field, typ)
	}
	return out, nil
}
