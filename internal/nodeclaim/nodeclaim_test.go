package nodeclaim

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestKeyIsMadeOnceAndClaimsCarryItsHash(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent", "node-password.key")
	k1, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
	k2, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	spki1, _ := x509.MarshalPKIXPublicKey(k1.Public())
	spki2, _ := x509.MarshalPKIXPublicKey(k2.Public())
	if KeyHash(spki1) != KeyHash(spki2) {
		t.Fatal("a second load made a new key")
	}
	req, err := NewRequest("edge-7", k1)
	if err != nil {
		t.Fatal(err)
	}
	node, hash, err := ParseRequest(req)
	if err != nil || node != "edge-7" || hash != KeyHash(spki1) {
		t.Fatalf("ParseRequest = %q, %q, %v; want edge-7 and the key's hash", node, hash, err)
	}
	// A tampered request fails its signature check.
	block, _ := pem.Decode(req)
	block.Bytes[len(block.Bytes)-3] ^= 0xff
	if _, _, err := ParseRequest(pem.EncodeToMemory(block)); err == nil {
		t.Error("tampered request accepted")
	}
	if err := os.WriteFile(path, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateKey(path); err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("damaged key file: %v, want an error naming it", err)
	}
}
