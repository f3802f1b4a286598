// Package ha lets servers join a cluster as further control-plane nodes on
// embedded etcd. The first server publishes what every server must share
// (the three CAs with their keys, the service-account key pair and the
// Secrets encryption config) as a bundle encrypted with a key derived
// from the server token, in the Secret kube-system/iks-server-bootstrap,
// readable with any join token; only holders of the server token can
// decrypt it. A joining server verifies the cluster CA by the token's
// hash before sending the token, fetches and decrypts the bundle, checks
// that its flags match the cluster, and writes the shared files; its own
// leaf certificates are then issued locally from the shared CAs.
package ha

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	token "github.com/iks-dev/iks/internal/jointoken"
	"github.com/iks-dev/iks/server/rbac"
)

// Where the bundle lives.
const (
	SecretNamespace = "kube-system"
	SecretName      = rbac.ServerBootstrapSecret
	secretKey       = "bundle"
)

// SharedFiles are the data-dir files every server holds identically.
var SharedFiles = []string{
	"server/tls/ca.crt", "server/tls/ca.key",
	"server/tls/front-proxy-ca.crt", "server/tls/front-proxy-ca.key",
	"server/tls/etcd/ca.crt", "server/tls/etcd/ca.key",
	"server/tls/sa.key", "server/tls/sa.pub",
	"server/cred/encryption-config.json",
	"server/cluster.json",
}

// Bundle maps SharedFiles to their contents.
type Bundle map[string][]byte

// ReadBundle reads the shared files of dataDir.
func ReadBundle(dataDir string) (Bundle, error) {
	b := Bundle{}
	for _, f := range SharedFiles {
		data, err := os.ReadFile(filepath.Join(dataDir, f))
		if err != nil {
			return nil, fmt.Errorf("server bootstrap bundle: %w", err)
		}
		b[f] = data
	}
	return b, nil
}

// key derives the bundle key from the server token.
func key(t token.Token) []byte {
	k := sha256.Sum256([]byte("iks server bootstrap v1\x00" + t.Bootstrap()))
	return k[:]
}

// Seal encrypts b for holders of t (AES-256-GCM, bound to the CA hash).
func (b Bundle) Seal(t token.Token) ([]byte, error) {
	plain, err := json.Marshal(b)
	if err != nil {
		return nil, err
	}
	aead, err := newAEAD(t)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return aead.Seal(nonce, nonce, plain, []byte(t.CAHash)), nil
}

// Open decrypts a sealed bundle with t.
func Open(sealed []byte, t token.Token) (Bundle, error) {
	aead, err := newAEAD(t)
	if err != nil {
		return nil, err
	}
	if len(sealed) < aead.NonceSize() {
		return nil, errors.New("server bootstrap bundle is truncated")
	}
	plain, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], []byte(t.CAHash))
	if err != nil {
		return nil, errors.New("the server bootstrap bundle does not open with this token: " +
			"a server joins with the server token (cat <data-dir>/server/token on a server), not an agent token")
	}
	var b Bundle
	if err := json.Unmarshal(plain, &b); err != nil {
		return nil, fmt.Errorf("server bootstrap bundle: %w", err)
	}
	for _, f := range SharedFiles {
		if _, ok := b[f]; !ok {
			return nil, fmt.Errorf("server bootstrap bundle lacks %s: upgrade the first server", f)
		}
	}
	return b, nil
}

func newAEAD(t token.Token) (cipher.AEAD, error) {
	blk, err := aes.NewCipher(key(t))
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(blk)
}
