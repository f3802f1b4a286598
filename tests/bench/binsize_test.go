package bench

import (
	"bufio"
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/iks-dev/iks/embedded"
	"github.com/iks-dev/iks/tests/testutil"
)

// TestBinarySize breaks bin/iks down: the launcher, the program it
// carries and that program's ELF sections, the carried assets
// (compressed) and the Go code by module, from `go tool nm -size` of the
// same build with its symbol table kept (`make` strips it).
func TestBinarySize(t *testing.T) {
	if os.Getenv("IKS_BENCH") == "" {
		t.Skip("benchmark: run with `make bench`")
	}
	bin := testutil.BinPath(t)
	st, err := os.Stat(bin)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n== iks binary size ==\nbin/iks                %6.1f MB   (target <= 150 MB: %.2fx; issue 12 baseline 235.5 MB: %.2fx)\n",
		mb(st.Size()), mb(st.Size())/150, mb(st.Size())/235.5)
	// bin/iks is the launcher; the program it carries compressed and
	// extracts once per version is bin/iks-unpacked.
	prog := filepath.Join(filepath.Dir(bin), "iks-unpacked")
	pst, err := os.Stat(prog)
	if err != nil {
		t.Fatalf("%v: build with `make`", err)
	}
	fmt.Fprintf(&b, "  program it carries (zstd) %6.1f MB unpacked, extracted once per version to <data-dir>/data/\n", mb(pst.Size()))
	f, err := elf.Open(prog)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range f.Sections {
		if s.Type != elf.SHT_NOBITS && s.Size >= 1<<20 {
			fmt.Fprintf(&b, "  section %-14s %6.1f MB\n", s.Name, mb(int64(s.Size)))
		}
	}
	f.Close()
	m, err := embedded.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	var assets int64
	for name, a := range m {
		names = append(names, name)
		assets += a.CompressedSize
	}
	sort.Slice(names, func(i, j int) bool { return m[names[i]].CompressedSize > m[names[j]].CompressedSize })
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%s %.1f", n, mb(m[n].CompressedSize))
	}
	fmt.Fprintf(&b, "  carried assets (zstd, in .rodata) %6.1f MB: %s\n", mb(assets), strings.Join(parts, ", "))

	// The same build with symbols, for the per-module breakdown.
	sym := filepath.Join(t.TempDir(), "iks")
	root := filepath.Dir(filepath.Dir(bin))
	build := exec.Command("go", "build", "-trimpath", "-tags", buildTags(t, root), "-o", sym, "./cmd/iks")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build with symbols: %v: %s", err, out)
	}
	mods, total, err := moduleSizes(sym)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&b, "  Go symbols by module (%.1f MB of .text and .rodata; .gopclntab grows with .text):\n", mb(total))
	for _, ms := range mods[:min(20, len(mods))] {
		fmt.Fprintf(&b, "    %6.1f MB  %s\n", mb(ms.size), ms.mod)
	}
	fmt.Print(b.String())
}

// buildTags reads the TAGS the Makefile builds bin/iks with.
func buildTags(t *testing.T, root string) string {
	data, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "TAGS"); ok {
			if _, v, ok := strings.Cut(v, ":="); ok {
				return strings.TrimSpace(v)
			}
		}
	}
	return ""
}

type modSize struct {
	mod  string
	size int64
}

// moduleSizes sums `go tool nm -size` by the module (from the binary's
// build info) each symbol belongs to; the standard library and runtime
// data are "std".
func moduleSizes(bin string) ([]modSize, int64, error) {
	info, err := exec.Command("go", "version", "-m", bin).Output()
	if err != nil {
		return nil, 0, fmt.Errorf("go version -m: %w", err)
	}
	var mods []string
	for _, l := range strings.Split(string(info), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && (f[0] == "dep" || f[0] == "mod") {
			mods = append(mods, f[1])
		}
	}
	sort.Slice(mods, func(i, j int) bool { return len(mods[i]) > len(mods[j]) })
	out, err := exec.Command("go", "tool", "nm", "-size", bin).Output()
	if err != nil {
		return nil, 0, fmt.Errorf("go tool nm: %w", err)
	}
	sizes := map[string]int64{}
	var total int64
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || strings.ContainsAny(f[2], "BbU") || strings.HasPrefix(f[3], "local.") {
			continue
		}
		size, _ := strconv.ParseInt(f[1], 10, 64)
		name := strings.Join(f[3:], " ")
		if name == "crypto/internal/fips140/drbg.memory" { // 32 MB of zeroes, not in the file
			continue
		}
		for _, p := range []string{"go:type.", "go:string.", "go:itab.", "type:", "*", "[]"} {
			name = strings.TrimPrefix(name, p)
		}
		owner := "std"
		for _, m := range mods {
			if strings.HasPrefix(name, m+".") || strings.HasPrefix(name, m+"/") {
				owner = m
				break
			}
		}
		sizes[owner] += size
		total += size
	}
	var res []modSize
	for m, s := range sizes {
		res = append(res, modSize{m, s})
	}
	sort.Slice(res, func(i, j int) bool { return res[i].size > res[j].size })
	return res, total, nil
}
