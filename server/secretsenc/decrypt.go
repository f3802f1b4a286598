package secretsenc

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"

	"k8s.io/apiserver/pkg/storage/value"
	"k8s.io/apiserver/pkg/storage/value/encrypt/secretbox"
)

// Parse reads an encryption config from its bytes (a joining server's
// copy from the bootstrap bundle); where names it in messages.
func Parse(data []byte, where string) (*Config, error) { return parse(data, where) }

// Decrypt returns the stored form of a Secret read raw from etcd: a value
// encrypted with one of c's keys is opened, any other (written before
// encryption was on) is returned as it is.
func (c *Config) Decrypt(ctx context.Context, v []byte) ([]byte, error) {
	for _, k := range c.Keys {
		prefix := []byte(Prefix(k.Name))
		if !bytes.HasPrefix(v, prefix) {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(k.Secret)
		if err != nil || len(raw) != keyBytes {
			return nil, fmt.Errorf("key %q is not a 32-byte secretbox key", k.Name)
		}
		var key [keyBytes]byte
		copy(key[:], raw)
		out, _, err := secretbox.NewSecretboxTransformer(key).TransformFromStorage(ctx, v[len(prefix):], value.DefaultContext(nil))
		if err != nil {
			return nil, fmt.Errorf("decrypt with key %q: %w", k.Name, err)
		}
		return out, nil
	}
	if bytes.HasPrefix(v, []byte("k8s:enc:")) {
		return nil, fmt.Errorf("encrypted with a key this config does not hold")
	}
	return v, nil
}
