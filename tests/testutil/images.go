package testutil

import (
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/iks-dev/iks/internal/ociimage"
)

// BuildImage builds the Go package pkg — relative to the repository root
// ("./tests/images/httpd") or an import path — as a static linux/amd64
// binary and packs it into an OCI image archive named name (e.g.
// "iks.local/httpd:1"), ready for containerd to import without a registry.
// The binary is the image's entrypoint at /<last element of pkg>. It returns
// the archive's path inside a temporary directory of t.
func BuildImage(t testing.TB, pkg, name string) string {
	t.Helper()
	bin := BuildBinary(t, pkg)
	base := filepath.Base(bin)
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatalf("BuildImage: read built binary: %v", err)
	}
	archive := filepath.Join(filepath.Dir(bin), base+".tar")
	img := ociimage.Image{
		Name:       name,
		Files:      []ociimage.File{{Path: "/" + base, Mode: 0o755, Data: data}},
		Entrypoint: []string{"/" + base},
	}
	if err := ociimage.WriteFile(archive, img); err != nil {
		t.Fatalf("BuildImage: %v", err)
	}
	return archive
}

// BuildBinary builds the Go package pkg (relative to the repository root,
// "./tests/images/httpd", or an import path) as a static linux/amd64
// binary named after its last element, in a temporary directory of t, and
// returns its path: the program an image carries, also runnable with
// nsenter in a harness namespace.
func BuildBinary(t testing.TB, pkg string) string {
	t.Helper()
	root := RepoRoot(t)
	base := path.Base(strings.TrimSuffix(pkg, "/"))
	if base == "." || base == "/" || base == "" {
		t.Fatalf("BuildBinary: package %q has no name to call its binary: give a package path such as ./tests/images/httpd", pkg)
	}
	bin := filepath.Join(t.TempDir(), base)
	cmd := exec.CommandContext(t.Context(), "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("BuildBinary: go build %s in %s: %v\n%s", pkg, root, err, out)
	}
	return bin
}

// RepoRoot returns the repository root: the nearest directory above the
// working directory that holds go.mod.
func RepoRoot(t testing.TB) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatalf("RepoRoot: working directory: %v", err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if d == filepath.Dir(d) {
			t.Fatalf("RepoRoot: no go.mod above %s: run the tests inside the repository", wd)
		}
	}
}
