package component

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWriteArgs(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "args")
	if err := WriteArgs(dir, "kube-apiserver", []string{"--anonymous-auth=false", "--profiling=false"}); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "kube-apiserver")
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(data), "kube-apiserver --anonymous-auth=false --profiling=false\n"; got != want {
		t.Errorf("recorded %q, want %q", got, want)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	// A second start replaces the line.
	if err := WriteArgs(dir, "kube-apiserver", []string{"--profiling=false"}); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(p); string(data) != "kube-apiserver --profiling=false\n" {
		t.Errorf("after a second write: %q", data)
	}
	if err := WriteArgs("", "x", nil); err != nil {
		t.Errorf("empty dir: %v", err)
	}
}
