package testutil

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// CPUGroup is a CPU cgroup at the top of the hierarchy with the default
// weight, standing for one machine when several share this one: a node's
// cgroup root (its pods) competes with it as one equal, where a process
// left in the root cgroup would compete thread by thread (each busy
// thread there weighs as much as the whole node). Benchmarks that compare
// an iks node against a plain process put that process, and the remote
// side both talk to, in groups of their own.
type CPUGroup struct {
	Dir  string // cgroup.procs is here
	root string // the hierarchy's root
}

// NewCPUGroup creates the group (cgroup v1 "cpu" hierarchy, or the
// unified one with the cpu controller) and removes it at the end of the
// test, its processes moved back to the root first.
func NewCPUGroup(t testing.TB, name string) *CPUGroup {
	t.Helper()
	root := "/sys/fs/cgroup/cpu"
	if _, err := os.Stat(filepath.Join(root, "cpu.shares")); err != nil {
		root = "/sys/fs/cgroup"
		if _, err := os.Stat(filepath.Join(root, "cgroup.subtree_control")); err != nil {
			t.Fatalf("no CPU cgroup hierarchy: neither /sys/fs/cgroup/cpu nor a unified /sys/fs/cgroup")
		}
		if err := os.WriteFile(filepath.Join(root, "cgroup.subtree_control"), []byte("+cpu"), 0o644); err != nil {
			t.Fatalf("enable the cpu controller in %s: %v", root, err)
		}
	}
	return newCPUGroup(t, root, filepath.Join(root, name))
}

// Sub creates a group inside g (of the default weight among g's
// children), removed at the end of the test: two subgroups split g's
// share equally, as two pods of one request split their node's.
func (g *CPUGroup) Sub(t testing.TB, name string) *CPUGroup {
	t.Helper()
	if _, err := os.Stat(filepath.Join(g.Dir, "cgroup.subtree_control")); err == nil {
		if err := os.WriteFile(filepath.Join(g.Dir, "cgroup.subtree_control"), []byte("+cpu"), 0o644); err != nil {
			t.Fatalf("enable the cpu controller in %s: %v", g.Dir, err)
		}
	}
	return newCPUGroup(t, g.root, filepath.Join(g.Dir, name))
}

func newCPUGroup(t testing.TB, root, dir string) *CPUGroup {
	t.Helper()
	g := &CPUGroup{Dir: dir, root: root}
	if err := os.Mkdir(g.Dir, 0o755); err != nil && !os.IsExist(err) {
		t.Fatalf("create cgroup %s: %v", g.Dir, err)
	}
	t.Cleanup(func() {
		deadline := time.Now().Add(10 * time.Second)
		for {
			b, _ := os.ReadFile(filepath.Join(g.Dir, "cgroup.procs"))
			for _, p := range strings.Fields(string(b)) {
				_ = os.WriteFile(filepath.Join(root, "cgroup.procs"), []byte(p), 0o644)
			}
			err := os.Remove(g.Dir)
			if err == nil || os.IsNotExist(err) {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("remove cgroup %s: %v", g.Dir, err)
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	return g
}

// Add moves process pid (all its threads) into the group.
func (g *CPUGroup) Add(t testing.TB, pid int) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(g.Dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
		t.Fatalf("move pid %d into %s: %v", pid, g.Dir, err)
	}
}

// Limit caps the group at cpus CPUs (a CFS quota over a 100 ms period),
// as a machine of that size; cpus 0 lifts the cap.
func (g *CPUGroup) Limit(t testing.TB, cpus float64) {
	t.Helper()
	quota := "-1"
	if cpus > 0 {
		quota = strconv.Itoa(int(cpus * 100000))
	}
	files := map[string]string{"cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": quota}
	if _, err := os.Stat(filepath.Join(g.Dir, "cpu.cfs_quota_us")); err != nil {
		if quota == "-1" {
			quota = "max"
		}
		files = map[string]string{"cpu.max": quota + " 100000"}
	}
	for _, f := range []string{"cpu.cfs_period_us", "cpu.cfs_quota_us", "cpu.max"} {
		v, ok := files[f]
		if !ok {
			continue
		}
		if err := os.WriteFile(filepath.Join(g.Dir, f), []byte(v), 0o644); err != nil {
			t.Fatalf("limit %s to %.2f CPUs: %s: %v", g.Dir, cpus, f, err)
		}
	}
}

// Wrap returns a command line that runs bin with args inside the group
// (a shell that moves itself in, then execs), for Netns.Exec.
func (g *CPUGroup) Wrap(bin string, args ...string) []string {
	return append([]string{"sh", "-c", `echo $$ > "` + filepath.Join(g.Dir, "cgroup.procs") + `" && exec "$0" "$@"`, bin}, args...)
}

// String names the group.
func (g *CPUGroup) String() string { return fmt.Sprintf("cgroup %s", g.Dir) }
