package embedded

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// rss returns this process's resident set in bytes.
func rss(t *testing.T) int64 {
	t.Helper()
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

func TestReleaseDropsAssetPagesAndKeepsThemReadable(t *testing.T) {
	m, err := Manifest()
	if err != nil {
		t.Skip("no embedded assets (built without `make`):", err)
	}
	var total int64
	for _, a := range m {
		total += a.CompressedSize
	}
	// Touch every asset's compressed bytes, as staging does.
	for _, a := range m {
		if _, err := assets.decode(a); err != nil {
			t.Fatal(err)
		}
	}
	before := rss(t)
	released := Release()
	after := rss(t)
	if released < total*9/10 {
		t.Fatalf("released %d bytes, want about the %d bytes of compressed assets", released, total)
	}
	if before-after < total/2 {
		t.Fatalf("RSS %d -> %d bytes: dropped %d, want at least half of the %d bytes of assets", before, after, before-after, total)
	}
	// The data is still there: every asset decodes to its manifest hash.
	for name := range m {
		if _, err := assets.decode(m[name]); err != nil {
			t.Fatalf("%s after Release: %v", name, err)
		}
	}
}
