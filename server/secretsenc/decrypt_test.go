package secretsenc

import (
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apiserverv1 "k8s.io/apiserver/pkg/apis/apiserver/v1"
	"k8s.io/apiserver/pkg/storage/value"
	"k8s.io/apiserver/pkg/storage/value/encrypt/secretbox"
)

func TestDecrypt(t *testing.T) {
	ctx := context.Background()
	k, err := NewKey(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewKey(time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(k.Secret)
	var key [32]byte
	copy(key[:], raw)
	sealed, err := secretbox.NewSecretboxTransformer(key).TransformToStorage(ctx, []byte("k8s\x00secret uid-123"), value.DefaultContext(nil))
	if err != nil {
		t.Fatal(err)
	}
	stored := append([]byte(Prefix(k.Name)), sealed...)
	path := filepath.Join(t.TempDir(), FileName)
	if err := (&Config{Keys: []apiserverv1.Key{k}}).Write(path); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	c, err := Parse(data, "test")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c.Decrypt(ctx, stored); err != nil || string(got) != "k8s\x00secret uid-123" {
		t.Errorf("Decrypt: %q %v", got, err)
	}
	if got, err := c.Decrypt(ctx, []byte("k8s\x00plain")); err != nil || string(got) != "k8s\x00plain" {
		t.Errorf("unencrypted value: %q %v", got, err)
	}
	wrong := &Config{Keys: []apiserverv1.Key{other}}
	if _, err := wrong.Decrypt(ctx, stored); err == nil || !strings.Contains(err.Error(), "does not hold") {
		t.Errorf("another cluster's key: %v", err)
	}
	same := other
	same.Name = k.Name // same name, other secret: another cluster's first key
	if _, err := (&Config{Keys: []apiserverv1.Key{same}}).Decrypt(ctx, stored); err == nil {
		t.Error("a value opened with another key of the same name")
	}
}
