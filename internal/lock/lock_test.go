package lock

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestSecondHolderIsRefused(t *testing.T) {
	p := filepath.Join(t.TempDir(), "data", "run", "iks.lock")
	l, err := Acquire(p)
	if err != nil {
		t.Fatal(err)
	}
	// flock locks belong to open file descriptions: a second open in this
	// process conflicts just as another process would.
	if _, err := Acquire(p); err == nil || !strings.Contains(err.Error(), "in use by another iks") {
		t.Fatalf("second Acquire: %v", err)
	}
	// And a real other process is refused too.
	if os.Getenv("LOCK_CHILD") == "" {
		cmd := exec.Command(os.Args[0], "-test.run", "TestChildAcquire")
		cmd.Env = append(os.Environ(), "LOCK_CHILD="+p)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("child: %v\n%s", err, out)
		}
	}
	l.Release()
	l2, err := Acquire(p)
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	l2.Release()
}

func TestChildAcquire(t *testing.T) {
	p := os.Getenv("LOCK_CHILD")
	if p == "" {
		t.Skip("helper for TestSecondHolderIsRefused")
	}
	if _, err := Acquire(p); err == nil {
		t.Fatal("child acquired a held lock")
	}
}
