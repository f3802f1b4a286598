package install

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/iks-dev/iks/tests/testutil"
)

// The installed binary is a launcher carrying the program compressed: its
// first run extracts the program into <data-dir>/data/<version>/iks, later
// runs reuse it, other versions' copies are removed, and the launcher is
// much smaller than the program.
func TestLauncherExtractsOnceIntoTheDataDir(t *testing.T) {
	bin := testutil.BinPath(t)
	dataDir := t.TempDir()
	stale := filepath.Join(dataDir, "data", "0123456789abcdef")
	if err := os.MkdirAll(stale, 0o755); err != nil {
		t.Fatal(err)
	}
	run := func(env ...string) string {
		t.Helper()
		cmd := exec.Command(bin, "--version")
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "iks version") {
			t.Fatalf("iks --version: %v\n%s", err, out)
		}
		return string(out)
	}
	first := run("IKS_DATA_DIR=" + dataDir)
	progs, _ := filepath.Glob(filepath.Join(dataDir, "data", "*", "iks"))
	if len(progs) != 1 {
		t.Fatalf("extracted programs %v, want exactly one", progs)
	}
	st, err := os.Stat(progs[0])
	if err != nil || st.Mode().Perm() != 0o755 {
		t.Fatalf("extracted program %s: %v %v, want mode 0755", progs[0], st.Mode(), err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("another version's copy %s survived the extraction: %v", stale, err)
	}
	if tmp, _ := filepath.Glob(filepath.Join(dataDir, "data", ".iks-*")); len(tmp) != 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
	// --data-dir on the command line wins over the environment.
	other := t.TempDir()
	cmd := exec.Command(bin, "token", "list", "--data-dir", other)
	cmd.Env = append(os.Environ(), "IKS_DATA_DIR="+dataDir)
	_, _ = cmd.CombinedOutput() // no cluster there: only the extraction matters
	if p, _ := filepath.Glob(filepath.Join(other, "data", "*", "iks")); len(p) != 1 {
		t.Errorf("--data-dir %s: extracted %v, want the program there", other, p)
	}
	// A second run reuses the program.
	if second := run("IKS_DATA_DIR=" + dataDir); second != first {
		t.Errorf("second run printed %q, first %q", second, first)
	}
	st2, err := os.Stat(progs[0])
	if err != nil || !st2.ModTime().Equal(st.ModTime()) {
		t.Errorf("the program was rewritten by the second run (%v -> %v, %v)", st.ModTime(), st2.ModTime(), err)
	}
	lst, err := os.Stat(bin)
	if err != nil || lst.Size()*3/2 > st.Size() {
		t.Errorf("launcher %d bytes vs program %d: want the launcher at most 2/3 of the program", lst.Size(), st.Size())
	}
}
