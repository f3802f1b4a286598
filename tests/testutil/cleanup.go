package testutil

import (
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cleanup dumps diagnostics when the test failed, then kills everything
// this node started: the server, containerd and shims (found by the data
// dir in their command line) and the pods (found by the node's cgroup
// root), and removes the node's cgroups. Namespaces go in their own
// cleanups, which run after this one.
func (n *Node) cleanup() {
	if n.t.Failed() {
		n.Dump()
	}
	n.Kill()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		pids := append(n.processesByDataDir(), n.cgroupPids()...)
		if len(pids) == 0 {
			break
		}
		for _, p := range pids {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
		time.Sleep(100 * time.Millisecond)
	}
	n.removeCgroups()
}

// Dump logs what helps to understand a failure.
func (n *Node) Dump() {
	log := n.Log()
	if lines := strings.Split(log, "\n"); len(lines) > 300 {
		log = strings.Join(lines[len(lines)-300:], "\n")
	}
	n.t.Logf("===== %s server log (tail)\n%s", n.Name, log)
	// IKS_TEST_LOG_DIR keeps whole logs of failed tests for a closer look.
	if dir := os.Getenv("IKS_TEST_LOG_DIR"); dir != "" {
		name := strings.NewReplacer("/", "_", " ", "_").Replace(n.t.Name()) + "-" + n.Name + ".log"
		if err := os.MkdirAll(dir, 0o700); err == nil {
			_ = os.WriteFile(filepath.Join(dir, name), []byte(n.Log()), 0o600)
		}
	}
	for _, c := range [][]string{{"ip", "addr"}, {"ip", "route"}, {"ip", "neigh"}, {"ss", "-tan"}, {"iptables-save"}} {
		out, _ := n.Net.Exec(c...)
		n.t.Logf("===== %s: %s\n%s", n.Name, strings.Join(c, " "), out)
	}
	// Bounded: a server whose peers were stopped first has lost its
	// quorum, and its apiserver would hold the request for minutes.
	if out, err := n.Kubectl("get", "--request-timeout=15s", "-A", "-o", "wide", "nodes,pods,deploy,events"); err == nil {
		n.t.Logf("===== %s: kubectl get -A\n%s", n.Name, out)
	}
}

// processesByDataDir returns PIDs whose command line names the data dir
// (containerd and the shims of this node only).
func (n *Node) processesByDataDir() []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	needle := []byte(n.DataDir + "/")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Contains(cmdline, needle) {
			out = append(out, pid)
		}
	}
	return out
}

// cgroupDirs lists the node's cgroup root in every hierarchy.
func (n *Node) cgroupDirs() []string {
	var out []string
	entries, _ := os.ReadDir("/sys/fs/cgroup")
	for _, e := range entries {
		d := filepath.Join("/sys/fs/cgroup", e.Name(), n.CgroupRoot)
		if fi, err := os.Lstat(filepath.Join("/sys/fs/cgroup", e.Name())); err == nil && fi.IsDir() {
			if _, err := os.Stat(d); err == nil {
				out = append(out, d)
			}
		}
	}
	return out
}

func (n *Node) cgroupPids() []int {
	var out []int
	for _, root := range n.cgroupDirs() {
		_ = filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
			if err != nil || fi.Name() != "cgroup.procs" {
				return nil
			}
			data, _ := os.ReadFile(p)
			for _, f := range strings.Fields(string(data)) {
				if pid, err := strconv.Atoi(f); err == nil {
					out = append(out, pid)
				}
			}
			return nil
		})
	}
	return out
}

func (n *Node) removeCgroups() {
	for _, root := range n.cgroupDirs() {
		var dirs []string
		_ = filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
			if err == nil && fi.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
		for _, d := range dirs {
			if err := syscall.Rmdir(d); err != nil {
				n.t.Logf("cleanup: rmdir %s: %v", d, err)
			}
		}
	}
}
