package pki

import (
	"bytes"
	"crypto"
	"fmt"
	"log/slog"

	"github.com/iks-dev/iks/internal/fsutil"
)

// saKeyHint tells the user how to recover a damaged service-account key.
const saKeyHint = "the service-account key is never regenerated on its own because that invalidates every " +
	"service-account token in the cluster; restore it from a backup, or delete both sa.key and sa.pub " +
	"to create a new pair (pods must then be restarted to get new tokens)"

// saKeyPair is the key kube-apiserver signs service-account tokens with
// (--service-account-signing-key-file, and kube-controller-manager's
// --service-account-private-key-file) and its public half
// (--service-account-key-file).
type saKeyPair struct {
	keyPath string
	pubPath string
	key     crypto.Signer
	keyPEM  []byte
	fresh   bool
}

// loadSAKey loads sa.key, or generates a new key in memory when neither
// sa.key nor sa.pub exists. A damaged key, or a public key without its
// private key, is an error.
func loadSAKey(keyPath, pubPath string) (*saKeyPair, error) {
	keyPEM, haveKey, err := readOptional(keyPath)
	if err != nil {
		return nil, fmt.Errorf("service-account key: %w", err)
	}
	if haveKey {
		key, err := parseKeyPEM(keyPEM)
		if err != nil {
			return nil, fmt.Errorf("service-account key %s is unparsable: %w; %s", keyPath, err, saKeyHint)
		}
		return &saKeyPair{keyPath: keyPath, pubPath: pubPath, key: key, keyPEM: keyPEM}, nil
	}
	if _, havePub, err := readOptional(pubPath); err != nil {
		return nil, fmt.Errorf("service-account key: %w", err)
	} else if havePub {
		return nil, fmt.Errorf("service-account public key %s exists but its private key %s is missing; %s", pubPath, keyPath, saKeyHint)
	}
	key, err := newKey()
	if err != nil {
		return nil, fmt.Errorf("service-account key: %w", err)
	}
	keyPEM, err = encodeKeyPEM(key)
	if err != nil {
		return nil, fmt.Errorf("service-account key: %w", err)
	}
	return &saKeyPair{keyPath: keyPath, pubPath: pubPath, key: key, keyPEM: keyPEM, fresh: true}, nil
}

// persist writes a freshly generated key and (re)writes sa.pub when it is
// missing or does not hold the public half of sa.key.
func (s *saKeyPair) persist(log *slog.Logger) error {
	if s.fresh {
		if err := fsutil.WriteFileAtomic(s.keyPath, s.keyPEM, keyMode); err != nil {
			return fmt.Errorf("service-account key: %w", err)
		}
		s.fresh = false
		log.Info("created service-account signing key", "key", s.keyPath)
	}
	pubPEM, err := encodePublicKeyPEM(s.key)
	if err != nil {
		return fmt.Errorf("service-account key %s: %w", s.keyPath, err)
	}
	have, _, err := readOptional(s.pubPath)
	if err != nil {
		return fmt.Errorf("service-account public key: %w", err)
	}
	if bytes.Equal(have, pubPEM) {
		return nil
	}
	if have != nil {
		log.Warn("rewriting service-account public key derived from sa.key", "file", s.pubPath)
	}
	if err := fsutil.WriteFileAtomic(s.pubPath, pubPEM, certMode); err != nil {
		return fmt.Errorf("service-account public key: %w", err)
	}
	return nil
}
