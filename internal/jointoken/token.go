// Package jointoken implements the iks join-token format, shared by the
// server (which issues tokens) and the agent (which verifies the server
// with them). The bootstrap-token Secrets behind tokens are in server/token.
//
// A join token has the form
//
//	K10<sha256 of the cluster CA certificate, 64 hex digits>::<id>.<secret>
//
// where <id>.<secret> is an upstream Kubernetes bootstrap token (id
// [a-z0-9]{6}, secret [a-z0-9]{16}) stored as a Secret
// kube-system/bootstrap-token-<id>. The CA hash lets a joining agent verify
// the server before it sends the secret; the bootstrap token then
// authenticates the agent's kubelet as system:bootstrap:<id> in the groups
// system:bootstrappers and [NodeGroup] for its TLS bootstrap.
//
// The format part of this file ([Token], [Parse], [Generate], [CAHashPEM])
// depends on nothing else in iks, so the agent can use it too.
package jointoken

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"regexp"
	"strings"

	bootstrapapi "k8s.io/cluster-bootstrap/token/api"
)

// Prefix starts every join token ("K10", as in k3s).
const Prefix = "K10"

// separator divides the CA hash from the bootstrap token.
const separator = "::"

// NodeGroup is the extra group of every iks join token; RBAC lets it
// create CSRs for node client certificates and have them auto-approved.
const NodeGroup = "system:bootstrappers:iks:default-node-token"

// FullTokenHint tells a user where to get a complete token.
const FullTokenHint = "use the full token from <data-dir>/server/token or `iks token create`: it pins the cluster CA"

var (
	idRE     = regexp.MustCompile(bootstrapapi.BootstrapTokenIDPattern)
	secretRE = regexp.MustCompile(`\A[a-z0-9]{16}\z`)
	hashRE   = regexp.MustCompile(`\A[0-9a-f]{64}\z`)
)

// Separator divides the CA hash from the bootstrap token.
const Separator = separator

// IsBootstrapID reports whether id is a valid bootstrap token ID.
func IsBootstrapID(id string) bool { return idRE.MatchString(id) }

// IsBootstrapSecret reports whether s is a valid bootstrap token secret.
func IsBootstrapSecret(s string) bool { return secretRE.MatchString(s) }

// Token is a parsed join token.
type Token struct {
	// CAHash is the lowercase hex SHA-256 of the cluster CA certificate's
	// DER encoding.
	CAHash string
	// ID and Secret form the bootstrap token "<ID>.<Secret>".
	ID     string
	Secret string
}

// Format returns the token as "K10<hash>::<id>.<secret>".
func (t Token) Format() string {
	return Prefix + t.CAHash + separator + t.Bootstrap()
}

// String returns a form safe for logs: the secret is redacted.
func (t Token) String() string {
	return Prefix + t.CAHash + separator + t.ID + ".<redacted>"
}

// Bootstrap returns the bootstrap token "<id>.<secret>", the bearer token
// the apiserver accepts.
func (t Token) Bootstrap() string { return t.ID + "." + t.Secret }

// Validate checks every part of t.
func (t Token) Validate() error {
	if err := ValidateCAHash(t.CAHash); err != nil {
		return err
	}
	if !idRE.MatchString(t.ID) {
		return fmt.Errorf("token ID %q is not 6 characters of [a-z0-9]: %s", t.ID, FullTokenHint)
	}
	if !secretRE.MatchString(t.Secret) {
		// Never echo the secret.
		return fmt.Errorf("token secret (%d characters) is not 16 characters of [a-z0-9]: %s", len(t.Secret), FullTokenHint)
	}
	return nil
}

// ValidateCAHash checks that h is 64 lowercase hex digits.
func ValidateCAHash(h string) error {
	if !hashRE.MatchString(h) {
		return fmt.Errorf("CA hash %q is not 64 lowercase hex digits (the SHA-256 of the CA certificate): %s", h, FullTokenHint)
	}
	return nil
}

// Parse parses a join token. Surrounding white space is ignored and the
// CA hash may be in either case. Error messages never contain the secret.
func Parse(s string) (Token, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Token{}, fmt.Errorf("token is empty: %s", FullTokenHint)
	}
	if !strings.HasPrefix(s, Prefix) {
		what := "it does not start with " + Prefix
		if idRE.MatchString(strings.SplitN(s, ".", 2)[0]) && strings.Count(s, ".") == 1 {
			what = "it is a bare bootstrap token without the CA hash"
		}
		return Token{}, fmt.Errorf("token (%d characters) is not a full iks join token, %s: %s", len(s), what, FullTokenHint)
	}
	hash, creds, ok := strings.Cut(strings.TrimPrefix(s, Prefix), separator)
	if !ok {
		return Token{}, fmt.Errorf("token lacks the %q between the CA hash and <id>.<secret>: %s", separator, FullTokenHint)
	}
	hash = strings.ToLower(hash)
	if err := ValidateCAHash(hash); err != nil {
		return Token{}, fmt.Errorf("token: %w", err)
	}
	id, secret, ok := strings.Cut(creds, ".")
	if !ok {
		return Token{}, fmt.Errorf("token credentials after %q are not of the form <id>.<secret>: %s", separator, FullTokenHint)
	}
	t := Token{CAHash: hash, ID: id, Secret: secret}
	if err := t.Validate(); err != nil {
		return Token{}, err
	}
	return t, nil
}

// Generate returns a new token with a random ID and secret (crypto/rand)
// for the CA with hash caHash.
func Generate(caHash string) (Token, error) {
	if err := ValidateCAHash(caHash); err != nil {
		return Token{}, err
	}
	id, err := randomString(bootstrapapi.BootstrapTokenIDBytes)
	if err != nil {
		return Token{}, err
	}
	secret, err := randomString(bootstrapapi.BootstrapTokenSecretBytes)
	if err != nil {
		return Token{}, err
	}
	return Token{CAHash: caHash, ID: id, Secret: secret}, nil
}

// tokenChars are the characters of bootstrap token IDs and secrets.
const tokenChars = "abcdefghijklmnopqrstuvwxyz0123456789"

// randomString returns n characters drawn uniformly from tokenChars.
func randomString(n int) (string, error) {
	out := make([]byte, 0, n)
	buf := make([]byte, 2*n)
	// 252 is the largest multiple of 36 below 256: rejecting bytes at or
	// above it keeps the distribution uniform.
	const limit = 256 - 256%len(tokenChars)
	for len(out) < n {
		if _, err := rand.Read(buf); err != nil {
			return "", fmt.Errorf("generate token: read random bytes: %w", err)
		}
		for _, b := range buf {
			if int(b) < limit && len(out) < n {
				out = append(out, tokenChars[int(b)%len(tokenChars)])
			}
		}
	}
	return string(out), nil
}

// CAHashPEM returns the token CA hash of the first certificate in a PEM
// bundle (the content of <data-dir>/server/tls/ca.crt).
func CAHashPEM(data []byte) (string, error) {
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return "", errors.New("no PEM CERTIFICATE block found")
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			return "", fmt.Errorf("parse certificate: %w", err)
		}
		sum := sha256.Sum256(b.Bytes)
		return hex.EncodeToString(sum[:]), nil
	}
}
