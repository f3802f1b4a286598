// Package secretsenc keeps Secrets encrypted at rest: the apiserver's
// EncryptionConfiguration (secretbox keys, identity last so data written
// before encryption was on stays readable) lives in the server's data dir,
// mode 0600, and is created on the first start. Status reads etcd to count
// Secrets per key; Rotate adds a new key, re-encrypts every Secret with it
// through the API, then drops the old keys.
package secretsenc

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	apiserverv1 "k8s.io/apiserver/pkg/apis/apiserver/v1"

	"github.com/iks-dev/iks/internal/fsutil"
)

// FileName is the config file's name in the server's cred dir.
const FileName = "encryption-config.json"

// keyBytes is a secretbox key's length.
const keyBytes = 32

// Provider names the encryption scheme of new keys; the apiserver stores
// Secrets as k8s:enc:secretbox:v1:<key name>:<ciphertext>.
const Provider = "secretbox"

// Config is a parsed encryption config with its secretbox keys in order:
// the first encrypts, all decrypt.
type Config struct {
	Keys []apiserverv1.Key
}

// Ensure creates the config at path with one new key when it is absent and
// otherwise checks it; either way it returns the config.
func Ensure(path string, now time.Time) (*Config, error) {
	c, err := Load(path)
	if err == nil {
		return c, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	k, err := NewKey(now)
	if err != nil {
		return nil, err
	}
	c = &Config{Keys: []apiserverv1.Key{k}}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	if err := c.Write(path); err != nil {
		return nil, err
	}
	return c, nil
}

// NewKey returns a random secretbox key named after now.
func NewKey(now time.Time) (apiserverv1.Key, error) {
	b := make([]byte, keyBytes)
	if _, err := rand.Read(b); err != nil {
		return apiserverv1.Key{}, fmt.Errorf("generate encryption key: %w", err)
	}
	return apiserverv1.Key{Name: fmt.Sprintf("secretbox-%d", now.UnixNano()),
		Secret: base64.StdEncoding.EncodeToString(b)}, nil
}

// Load reads and checks the config at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read encryption config: %w", err)
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("encryption config %s is mode %o, readable by others: it holds the keys of every Secret; "+
			"run chmod 600 %s (and check who read it)", path, st.Mode().Perm(), path)
	}
	return parse(data, path)
}

// parse reads an encryption config; where names it in messages.
func parse(data []byte, where string) (*Config, error) {
	var ec apiserverv1.EncryptionConfiguration
	if err := json.Unmarshal(data, &ec); err != nil {
		return nil, fmt.Errorf("encryption config %s is damaged (%v): restore it from a backup of the data dir; "+
			"without its keys the Secrets stored in etcd cannot be read", where, err)
	}
	c := &Config{}
	for _, r := range ec.Resources {
		for _, p := range r.Providers {
			if p.Secretbox != nil {
				c.Keys = append(c.Keys, p.Secretbox.Keys...)
			}
		}
	}
	if len(c.Keys) == 0 {
		return nil, fmt.Errorf("encryption config %s has no secretbox key: restore it from a backup of the data dir", where)
	}
	for _, k := range c.Keys {
		b, err := base64.StdEncoding.DecodeString(k.Secret)
		if err != nil || len(b) != keyBytes || k.Name == "" {
			return nil, fmt.Errorf("encryption config %s: key %q is not a named 32-byte base64 secretbox key: "+
				"restore the file from a backup of the data dir", where, k.Name)
		}
	}
	return c, nil
}

// Write stores c at path atomically, mode 0600: Secrets first, with the
// keys in order, then identity (reads data written before encryption).
func (c *Config) Write(path string) error {
	ec := apiserverv1.EncryptionConfiguration{
		TypeMeta: metav1.TypeMeta{APIVersion: "apiserver.config.k8s.io/v1", Kind: "EncryptionConfiguration"},
		Resources: []apiserverv1.ResourceConfiguration{{
			Resources: []string{"secrets"},
			Providers: []apiserverv1.ProviderConfiguration{
				{Secretbox: &apiserverv1.SecretboxConfiguration{Keys: c.Keys}},
				{Identity: &apiserverv1.IdentityConfiguration{}},
			},
		}},
	}
	data, err := json.MarshalIndent(ec, "", "  ")
	if err != nil {
		return fmt.Errorf("encode encryption config: %w", err)
	}
	return fsutil.WriteFileAtomic(path, append(data, '\n'), 0o600)
}

// Prefix is how etcd values encrypted with key name begin.
func Prefix(name string) string { return "k8s:enc:" + Provider + ":v1:" + name + ":" }
