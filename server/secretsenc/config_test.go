package secretsenc

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestEnsureCreatesPrivateConfigOnceAndLoadChecksIt(t *testing.T) {
	p := filepath.Join(t.TempDir(), "cred", FileName)
	c, err := Ensure(p, time.Unix(100, 0))
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("config %v mode %v, want 0600", err, st.Mode().Perm())
	}
	again, err := Ensure(p, time.Unix(200, 0))
	if err != nil || len(again.Keys) != 1 || again.Keys[0] != c.Keys[0] {
		t.Fatalf("second Ensure changed the key: %v %+v %+v", err, again, c)
	}
	data, _ := os.ReadFile(p)
	for _, want := range []string{`"secretbox"`, `"identity"`, `"secrets"`, "EncryptionConfiguration"} {
		if !strings.Contains(string(data), want) {
			t.Errorf("config lacks %s:\n%s", want, data)
		}
	}
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("a world-readable config was accepted: %v", err)
	}
	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Ensure(p, time.Now()); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("a damaged config was accepted or replaced: %v", err)
	}
	bad := &Config{Keys: c.Keys}
	bad.Keys[0].Secret = "c2hvcnQ="
	if err := bad.Write(p); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), "32-byte") {
		t.Errorf("a short key was accepted: %v", err)
	}
}

func TestStatusCountsByKey(t *testing.T) {
	st := &Status{ActiveKey: "k2", ByKey: map[string]int{}}
	for _, v := range []string{Prefix("k2") + "xx", Prefix("k2") + "yy", Prefix("k1") + "zz", "\x6b8s\x00plain", "k8s:enc:aescbc:v1:a:b"} {
		st.count([]byte(v))
	}
	if st.ByKey["k2"] != 2 || st.ByKey["k1"] != 1 || st.Plaintext != 1 || st.Other != 1 || st.Total() != 5 {
		t.Fatalf("counts %+v", st)
	}
	if st.Current() {
		t.Error("Current with Secrets on other keys")
	}
	if s := st.String(); !strings.Contains(s, "rotate-keys") || !strings.Contains(s, "unencrypted: 1") {
		t.Errorf("status text:\n%s", s)
	}
	ok := &Status{ActiveKey: "k", ByKey: map[string]int{"k": 3}}
	if !ok.Current() {
		t.Error("not Current with every Secret on the active key")
	}
}

func TestHashLabelIgnoresTheAPIServerIDHash(t *testing.T) {
	line := `apiserver_encryption_config_controller_last_config_info{apiserver_id_hash="sha256:aaa",hash="sha256:bbb"} 1`
	if m := hashLabel.FindStringSubmatch(line); m == nil || m[1] != "sha256:bbb" {
		t.Fatalf("got %v", m)
	}
}
