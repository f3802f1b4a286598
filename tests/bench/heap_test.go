package bench

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/iks-dev/iks/tests/testutil"
)

// pprofAddr is where a node under bench serves pprof (IKS_PPROF), on the
// loopback of its own network namespace.
const pprofAddr = "127.0.0.1:6060"

// heapTop fetches the node's in-use heap profile and returns the top n
// entries of `go tool pprof -top`, indented, with the profile's path (kept
// for a closer look) on the first line.
func heapTop(t *testing.T, n *testutil.Node, top int) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	body, err := n.HTTPGet(ctx, "http://"+pprofAddr+"/debug/pprof/heap?gc=1")
	if err != nil {
		t.Fatalf("heap profile of %s: %v", n.Name, err)
	}
	path := filepath.Join(os.TempDir(), "iks-bench-"+n.Name+"-heap.pb.gz")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("go", "tool", "pprof", "-top", "-inuse_space", "-nodecount="+strconv.Itoa(top), path).CombinedOutput()
	if err != nil {
		t.Fatalf("go tool pprof: %v: %s", err, out)
	}
	lines := []string{"  profile: " + path}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if strings.HasPrefix(l, "File:") || strings.HasPrefix(l, "Type:") || strings.HasPrefix(l, "Time:") {
			continue
		}
		lines = append(lines, "  "+l)
	}
	return strings.Join(lines, "\n") + "\n"
}
