package token

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const otherHash = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"

func readToken(t *testing.T, dataDir string) (string, os.FileMode) {
	t.Helper()
	path := ServerTokenPath(dataDir)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data), info.Mode().Perm()
}

func TestEnsureServerTokenRandomIsRecordedAndReused(t *testing.T) {
	dir := t.TempDir()
	first, err := EnsureServerToken(dir, testHash, "")
	if err != nil {
		t.Fatal(err)
	}
	data, mode := readToken(t, dir)
	if mode != 0o600 {
		t.Errorf("token file mode %v, want 0600", mode)
	}
	if data != first.Format()+"\n" {
		t.Errorf("token file holds %q, want %q", data, first.Format())
	}
	second, err := EnsureServerToken(dir, testHash, "")
	if err != nil {
		t.Fatal(err)
	}
	if second != first {
		t.Errorf("second start changed the token: %v != %v", second, first)
	}
	// A loosened mode is tightened again.
	if err := os.Chmod(ServerTokenPath(dir), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := EnsureServerToken(dir, testHash, ""); err != nil {
		t.Fatal(err)
	}
	if _, mode := readToken(t, dir); mode != 0o600 {
		t.Errorf("mode after restart %v, want 0600", mode)
	}
	entries, err := os.ReadDir(filepath.Dir(ServerTokenPath(dir)))
	if err != nil || len(entries) != 1 {
		t.Errorf("server dir holds %v (%v), want only the token (no temporary files)", entries, err)
	}
}

func TestEnsureServerTokenFromFlagIsDeterministic(t *testing.T) {
	const pass = "correct horse battery staple"
	a, err := EnsureServerToken(t.TempDir(), testHash, pass)
	if err != nil {
		t.Fatal(err)
	}
	b, err := EnsureServerToken(t.TempDir(), testHash, pass)
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Errorf("same --token gave %v and %v", a, b)
	}
	if err := a.Validate(); err != nil {
		t.Errorf("derived token invalid: %v", err)
	}
	c, err := FromFlag(testHash, pass+"!")
	if err != nil {
		t.Fatal(err)
	}
	if c.Bootstrap() == a.Bootstrap() || c.ID == a.ID {
		t.Error("different --token values derived the same token or ID")
	}
}

func TestEnsureServerTokenFlagForms(t *testing.T) {
	full := Token{CAHash: testHash, ID: "abc123", Secret: testSecret}
	got, err := EnsureServerToken(t.TempDir(), testHash, full.Format())
	if err != nil || got != full {
		t.Errorf("full token as --token: got %v, %v; want %v", got, err, full)
	}
	got, err = EnsureServerToken(t.TempDir(), testHash, full.Bootstrap())
	if err != nil || got != full {
		t.Errorf("bootstrap token as --token: got %v, %v; want %v", got, err, full)
	}
	other := Token{CAHash: otherHash, ID: "abc123", Secret: testSecret}
	dir := t.TempDir()
	if _, err := EnsureServerToken(dir, testHash, other.Format()); err == nil || !strings.Contains(err.Error(), "pins CA") {
		t.Errorf("token of another CA as --token: err = %v", err)
	}
	assertNoToken(t, dir)
}

func assertNoToken(t *testing.T, dir string) {
	t.Helper()
	if _, err := os.Stat(ServerTokenPath(dir)); !os.IsNotExist(err) {
		t.Errorf("a failed EnsureServerToken wrote %s (stat: %v)", ServerTokenPath(dir), err)
	}
}

func TestEnsureServerTokenErrors(t *testing.T) {
	t.Run("short flag", func(t *testing.T) {
		dir := t.TempDir()
		_, err := EnsureServerToken(dir, testHash, "tooshort")
		if err == nil || !strings.Contains(err.Error(), "at least 16") {
			t.Fatalf("err = %v, want one asking for 16 characters", err)
		}
		if err := CheckFlag("tooshort"); err == nil {
			t.Error("CheckFlag accepted a short --token")
		}
		assertNoToken(t, dir)
	})
	t.Run("different flag than recorded", func(t *testing.T) {
		dir := t.TempDir()
		if _, err := EnsureServerToken(dir, testHash, "first passphrase value"); err != nil {
			t.Fatal(err)
		}
		before, _ := readToken(t, dir)
		_, err := EnsureServerToken(dir, testHash, "second passphrase value")
		if err == nil || !strings.Contains(err.Error(), "differs") || !strings.Contains(err.Error(), ServerTokenPath(dir)) {
			t.Fatalf("err = %v, want one naming the recorded file", err)
		}
		if after, _ := readToken(t, dir); after != before {
			t.Error("a refused --token changed the recorded token")
		}
		// Omitting --token keeps the recorded one.
		if _, err := EnsureServerToken(dir, testHash, ""); err != nil {
			t.Errorf("restart without --token: %v", err)
		}
	})
	t.Run("recorded for another CA", func(t *testing.T) {
		dir := t.TempDir()
		if _, err := EnsureServerToken(dir, otherHash, ""); err != nil {
			t.Fatal(err)
		}
		_, err := EnsureServerToken(dir, testHash, "")
		if err == nil || !strings.Contains(err.Error(), "CA was replaced") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("damaged file", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.MkdirAll(filepath.Dir(ServerTokenPath(dir)), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(ServerTokenPath(dir), []byte("garbage\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := EnsureServerToken(dir, testHash, "")
		if err == nil || !strings.Contains(err.Error(), "damaged") {
			t.Fatalf("err = %v", err)
		}
		if data, _ := readToken(t, dir); data != "garbage\n" {
			t.Error("damaged token file was overwritten")
		}
	})
	t.Run("bad CA hash", func(t *testing.T) {
		dir := t.TempDir()
		if _, err := EnsureServerToken(dir, "xyz", ""); err == nil {
			t.Fatal("accepted a bad CA hash")
		}
		assertNoToken(t, dir)
	})
}

func TestDamagedFullTokenFlagIsRefused(t *testing.T) {
	damaged := "K10" + testHash[:60] + "::abc123." + testSecret
	if _, err := FromFlag(testHash, damaged); err == nil || !strings.Contains(err.Error(), "--token") {
		t.Errorf("FromFlag(damaged full token) = %v, want an error instead of a derived passphrase token", err)
	}
	if err := CheckFlag(damaged); err == nil {
		t.Error("CheckFlag accepted a damaged full token")
	}
	for _, ok := range []string{"abc123." + testSecret, "a long enough passphrase", Token{CAHash: otherHash, ID: "abc123", Secret: testSecret}.Format()} {
		if err := CheckFlag(ok); err != nil {
			t.Errorf("CheckFlag(%q) = %v", ok, err)
		}
	}
}

func TestBlankFlagIsRefused(t *testing.T) {
	dir := t.TempDir()
	if _, err := EnsureServerToken(dir, testHash, "   "); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Fatalf("blank --token: err = %v", err)
	}
	assertNoToken(t, dir)
}
