// Package nodeclaim is the node-name claim shared by agent and server: a
// machine joining the cluster proves that a node name is its own, so that
// a second machine with the same name (a cloned VM) is refused at join
// instead of fighting the first one over the Node.
//
// Each agent keeps a private key, its node password, created once in its
// data dir (mode 0600). On its first join it creates a
// CertificateSigningRequest for [SignerName] whose subject is
// CN=<node name>, signed with that key: the signature proves possession,
// and the key never leaves the machine. The server's approver keeps the
// SHA-256 of the first public key that claimed a name in the Secret
// [SecretName] in kube-system, approves a claim with the same key and
// denies a claim with another one. Deleting the Node deletes the Secret
// and frees the name. Nothing signs these requests: only the approval
// matters.
package nodeclaim

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/iks-dev/iks/internal/fsutil"
)

// SignerName is the signer of node-name claim CSRs.
const SignerName = "iks.io/node-claim"

// Namespace holds the node password Secrets.
const Namespace = "kube-system"

// HashKey is the Secret data key holding the claimed public key's hash.
const HashKey = "hash"

// SecretName is the Secret that records who owns node's name.
func SecretName(node string) string { return node + ".node-password.iks" }

// KeyFile is where an agent keeps its node password key.
func KeyFile(agentDir string) string { return filepath.Join(agentDir, "node-password.key") }

// LoadOrCreateKey returns the key in path, creating it (mode 0600,
// atomically) when the file does not exist.
func LoadOrCreateKey(path string) (crypto.Signer, error) {
	data, err := os.ReadFile(path)
	if err == nil {
		block, _ := pem.Decode(data)
		if block == nil {
			return nil, fmt.Errorf("node password %s is damaged (no PEM block): restore it from a backup, or delete it "+
				"and delete this node on the server (`iks kubectl delete node NAME`) to join with a new one", path)
		}
		k, err := x509.ParseECPrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("node password %s is damaged: %w; restore it from a backup, or delete it "+
				"and delete this node on the server to join with a new one", path, err)
		}
		return k, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read node password %s: %w", path, err)
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate node password: %w", err)
	}
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("encode node password: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w (check that the data dir is writable)", filepath.Dir(path), err)
	}
	if err := fsutil.WriteFileAtomic(path, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return nil, fmt.Errorf("write node password: %w", err)
	}
	return k, nil
}

// NewRequest returns the PEM CSR that claims node with key.
func NewRequest(node string, key crypto.Signer) ([]byte, error) {
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: node}}, key)
	if err != nil {
		return nil, fmt.Errorf("node-name claim for %s: %w", node, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), nil
}

// ParseRequest checks a claim's PEM CSR (its signature proves possession
// of the key) and returns the node it claims and the hash of its key.
func ParseRequest(data []byte) (node, keyHash string, err error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return "", "", errors.New("request is not a PEM CERTIFICATE REQUEST")
	}
	req, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return "", "", fmt.Errorf("request is unparsable: %w", err)
	}
	if err := req.CheckSignature(); err != nil {
		return "", "", fmt.Errorf("request signature is invalid: %w", err)
	}
	if req.Subject.CommonName == "" {
		return "", "", errors.New("request names no node (empty CN)")
	}
	return req.Subject.CommonName, KeyHash(req.RawSubjectPublicKeyInfo), nil
}

// KeyHash is the recorded form of a public key (DER SubjectPublicKeyInfo).
func KeyHash(spki []byte) string {
	sum := sha256.Sum256(spki)
	return hex.EncodeToString(sum[:])
}
