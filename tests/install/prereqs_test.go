package install

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// pathWithout returns a directory of links to every program in PATH (and
// /usr/local/go/bin) except the named ones, to stand for a machine where
// those are not installed; nothing on the real machine is removed.
func pathWithout(t *testing.T, drop ...string) string {
	t.Helper()
	dir := t.TempDir()
	skip := map[string]bool{}
	for _, d := range drop {
		skip[d] = true
	}
	for _, src := range append(filepath.SplitList(os.Getenv("PATH")), "/usr/local/go/bin") {
		entries, err := os.ReadDir(src)
		if err != nil {
			continue
		}
		for _, e := range entries {
			if skip[e.Name()] || e.IsDir() {
				continue
			}
			link := filepath.Join(dir, e.Name())
			if _, err := os.Lstat(link); err == nil {
				continue // the first in PATH wins, as for the shell
			}
			if err := os.Symlink(filepath.Join(src, e.Name()), link); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

// runEnv runs name args in dir with env replacing the given variables.
func runEnv(t *testing.T, env map[string]string, dir, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if _, ok := env[k]; !ok {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%s %v did not finish within 2 minutes:\n%s", name, args, out)
	}
	return string(out), err
}

func wantFailure(t *testing.T, out string, err error, want ...string) {
	t.Helper()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() == 0 {
		t.Errorf("exit: %v, want a non-zero exit; output:\n%s", err, out)
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("output does not name %q:\n%s", w, out)
		}
	}
}

func repoRoot(t *testing.T) string {
	t.Helper()
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return repo
}

// The build prerequisites check names what is missing and how to install
// it, from a plain check, from make, and from install.sh when it must build.
func TestPrereqsMissing(t *testing.T) {
	repo := repoRoot(t)
	script := filepath.Join(repo, "scripts", "prereqs.sh")
	empty := t.TempDir()

	t.Run("all found here", func(t *testing.T) {
		out, err := runEnv(t, nil, repo, "bash", script, "check", "build", "runtime")
		if err != nil {
			t.Fatalf("this machine has every prerequisite, yet: %v\n%s", err, out)
		}
	})
	t.Run("libseccomp", func(t *testing.T) {
		out, err := runEnv(t, map[string]string{"PKG_CONFIG_PATH": empty, "PKG_CONFIG_LIBDIR": empty}, repo, "bash", script, "check", "build")
		wantFailure(t, out, err, "libseccomp", "apt-get install -y libseccomp-dev")
		if strings.Contains(out, "zstd") {
			t.Errorf("names zstd, which is installed:\n%s", out)
		}
	})
	t.Run("zstd and pkg-config", func(t *testing.T) {
		bin := pathWithout(t, "zstd", "pkg-config")
		out, err := runEnv(t, map[string]string{"PATH": bin}, repo, "bash", script, "check", "build")
		wantFailure(t, out, err, "zstd (build:", "apt-get install -y zstd", "pkg-config (build:",
			"apt-get install -y pkg-config", "install them all with: sudo apt-get install -y pkg-config libseccomp-dev zstd")
	})
	t.Run("old go", func(t *testing.T) {
		bin := t.TempDir()
		if err := os.WriteFile(filepath.Join(bin, "go"), []byte("#!/bin/sh\necho go1.21.5\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		out, err := runEnv(t, map[string]string{"PATH": bin + ":" + os.Getenv("PATH")}, repo, "bash", script, "check", "build")
		wantFailure(t, out, err, "is Go 1.21.5, go.mod needs 1.26", "https://go.dev/dl/")
	})
	t.Run("install dry run", func(t *testing.T) {
		bin := pathWithout(t, "nft")
		out, err := runEnv(t, map[string]string{"PATH": bin, "IKS_PREREQS_DRY_RUN": "true"}, repo, "bash", script, "install", "runtime")
		if err != nil {
			t.Fatalf("dry run: %v\n%s", err, out)
		}
		for _, w := range []string{"nft (runtime: kube-proxy nftables mode", "+ apt-get update", "+ apt-get install -y --no-install-recommends nftables"} {
			if !strings.Contains(out, w) {
				t.Errorf("output does not say %q:\n%s", w, out)
			}
		}
	})
	t.Run("make", func(t *testing.T) {
		bin := pathWithout(t, "zstd")
		out, err := runEnv(t, map[string]string{"PATH": bin}, repo, "make", "prereqs")
		wantFailure(t, out, err, "checking the build prerequisites", "zstd", "apt-get install -y zstd")
	})
	t.Run("install.sh with INSTALL_IKS_SKIP_DEPS", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("install.sh refuses to run without root")
		}
		// A checkout without bin/iks, so install.sh must build.
		src := t.TempDir()
		for _, f := range []string{"Makefile", "go.mod", "scripts/prereqs.sh", "scripts/iks-killall.sh", "scripts/iks-uninstall.sh"} {
			data, err := os.ReadFile(filepath.Join(repo, f))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(filepath.Join(src, filepath.Dir(f)), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(src, f), data, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		binDir := filepath.Join(t.TempDir(), "bin")
		bin := pathWithout(t, "zstd")
		out, err := runEnv(t, map[string]string{"PATH": bin, "PKG_CONFIG_PATH": empty, "PKG_CONFIG_LIBDIR": empty,
			"INSTALL_IKS_SKIP_DEPS": "true", "IKS_SOURCE_DIR": src, "INSTALL_IKS_BIN_DIR": binDir,
			"INSTALL_IKS_SYSTEMD": "false", "INSTALL_IKS_SKIP_START": "true"}, repo, "sh", filepath.Join(repo, "install.sh"))
		wantFailure(t, out, err, "apt-get install -y zstd", "apt-get install -y libseccomp-dev", "INSTALL_IKS_SKIP_DEPS")
		if _, err := os.Stat(binDir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("install.sh wrote %s before stopping: %v", binDir, err)
		}
	})
}

// install.sh is committed with its run bit: the README's `sudo ./install.sh`.
func TestInstallScriptExecutable(t *testing.T) {
	repo := repoRoot(t)
	out, err := exec.Command("git", "-C", repo, "ls-files", "-s", "install.sh", "scripts/prereqs.sh").CombinedOutput()
	if err != nil {
		t.Fatalf("git ls-files: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2 {
		t.Fatalf("git ls-files: %q, want install.sh and scripts/prereqs.sh", out)
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "100755 ") {
			t.Errorf("committed without its run bit: %s", l)
		}
	}
}
