package install

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/iks-dev/iks/tests/testutil"
)

// The installed binary is a launcher carrying the program compressed: its
// first run extracts the program into <prefix>/lib/iks/<version>/iks
// beside its bin dir (or $IKS_PROGRAM_DIR), later runs reuse it, other
// versions' copies are removed, the data dir is not touched and the
// launcher is much smaller than the program.
func TestLauncherExtractsOnceBesideItsBinDir(t *testing.T) {
	prefix := t.TempDir()
	bin := filepath.Join(prefix, "bin", "iks")
	copyFile(t, testutil.BinPath(t), bin)
	stale := filepath.Join(prefix, "lib", "iks", "0123456789abcdef")
	if err := os.MkdirAll(stale, 0o755); err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(prefix, "data")
	run := func(env ...string) string {
		t.Helper()
		cmd := exec.Command(bin, "--version")
		cmd.Env = append(append(os.Environ(), "IKS_DATA_DIR="+dataDir, "IKS_PROGRAM_DIR="), env...)
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "iks version") {
			t.Fatalf("iks --version: %v\n%s", err, out)
		}
		return string(out)
	}
	first := run()
	progs, _ := filepath.Glob(filepath.Join(prefix, "lib", "iks", "*", "iks"))
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
	if tmp, _ := filepath.Glob(filepath.Join(prefix, "lib", "iks", ".iks-*")); len(tmp) != 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
	if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
		t.Errorf("the launcher created the data dir %s (%v): a refused start must leave none", dataDir, err)
	}
	// A second run reuses the program.
	if second := run(); second != first {
		t.Errorf("second run printed %q, first %q", second, first)
	}
	st2, err := os.Stat(progs[0])
	if err != nil || !st2.ModTime().Equal(st.ModTime()) {
		t.Errorf("the program was rewritten by the second run (%v -> %v, %v)", st.ModTime(), st2.ModTime(), err)
	}
	// $IKS_PROGRAM_DIR wins.
	other := t.TempDir()
	run("IKS_PROGRAM_DIR=" + other)
	if p, _ := filepath.Glob(filepath.Join(other, "*", "iks")); len(p) != 1 {
		t.Errorf("IKS_PROGRAM_DIR=%s: extracted %v, want the program there", other, p)
	}
	lst, err := os.Stat(bin)
	if err != nil || lst.Size()*3/2 > st.Size() {
		t.Errorf("launcher %d bytes vs program %d: want the launcher at most 2/3 of the program", lst.Size(), st.Size())
	}
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
