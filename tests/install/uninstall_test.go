// Package install tests install.sh, iks-killall.sh and iks-uninstall.sh
// end to end: a real install of the binary built by `make` (bin/iks), a
// node that becomes Ready, a pod with a host port, then an uninstall that
// must leave the machine as it found it.
//
// iks runs inside a network namespace the test creates (nsenter --net
// only, so /sys, the cgroups and the mount table are the host's: that is
// what the uninstall must clean). The namespace has a veth pair with both
// ends inside and no way out, so nothing reaches a real network. Every path
// of the installation is under t.TempDir(), and the node gets a cgroup root
// of its own, so pods of anything else on the machine are never touched.
package install

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/iks-dev/iks/tests/testutil"
)

const (
	nodeIP   = "10.77.0.1"
	peerIP   = "10.77.0.254"
	nodeName = "iks-install-test"
	podName  = "install-test"
	hostPort = "18080"
)

// hostPaths are the host directories kubelet and containerd use at
// hard-coded paths; the uninstall must leave each as it was.
var hostPaths = []string{"/var/lib/kubelet", "/var/lib/cni", "/var/log/containers", "/var/log/pods", "/run/containerd", "/etc/iks"}

// otherHarness reports mounts that other test harnesses on the same
// machine may create meanwhile (their named network namespaces and mount
// namespace files), which this test must not mistake for leftovers. Pod
// network namespaces (cni-*) are not excused.
func otherHarness(m string) bool {
	return strings.HasPrefix(m, "/run/iks-test/") ||
		strings.HasPrefix(m, "/run/netns/") && !strings.HasPrefix(m, "/run/netns/cni-")
}

type layout struct {
	repo                                        string
	tmp, binDir, dataDir, configDir, kubeconfig string
	logFile, pidFile, cgroupRoot, netns         string
}

func (l layout) installed() string { return filepath.Join(l.binDir, "iks") }

func TestInstallUninstall(t *testing.T) {
	testutil.RequireRoot(t)
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	binary := filepath.Join(repo, "bin", "iks")
	if _, err := os.Stat(binary); err != nil {
		testutil.Unavailable(t, "%s not built (run `make` first): %v", binary, err)
	}
	for _, tool := range []string{"ip", "nsenter", "sh", "mount"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is required by install.sh or this test: %v", tool, err)
		}
	}
	_, errIpt := exec.LookPath("iptables-save")
	withIptables := errIpt == nil
	if !withIptables {
		t.Log("iptables not installed: the pod gets no hostPort (the portmap plugin needs iptables), so the CNI-* rule cleanup is not exercised")
	}

	id := randomID(t)
	tmp := t.TempDir()
	l := layout{
		repo: repo, tmp: tmp,
		binDir:     filepath.Join(tmp, "bin"),
		dataDir:    filepath.Join(tmp, "data"),
		configDir:  filepath.Join(tmp, "etc", "iks"),
		kubeconfig: filepath.Join(tmp, "etc", "iks", "iks.yaml"),
		logFile:    filepath.Join(tmp, "log", "iks.log"),
		pidFile:    filepath.Join(tmp, "run", "iks.pid"),
		cgroupRoot: "/iks-install-test-" + id,
		netns:      "iksinst-" + id,
	}

	// The network namespace: eth0 with the node address and a default
	// route via its peer, whose end is in the same namespace.
	run(t, "ip", "netns", "add", l.netns)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", l.netns).CombinedOutput(); err != nil {
			t.Errorf("delete netns %s: %v: %s", l.netns, err, out)
		}
	})
	run(t, "ip", "-n", l.netns, "link", "set", "lo", "up")
	run(t, "ip", "-n", l.netns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0-peer")
	run(t, "ip", "-n", l.netns, "addr", "add", nodeIP+"/24", "dev", "eth0")
	run(t, "ip", "-n", l.netns, "addr", "add", peerIP+"/24", "dev", "eth0-peer")
	run(t, "ip", "-n", l.netns, "link", "set", "eth0", "up")
	run(t, "ip", "-n", l.netns, "link", "set", "eth0-peer", "up")
	run(t, "ip", "-n", l.netns, "route", "add", "default", "via", peerIP, "dev", "eth0")
	waitLinkLocal(t, l)

	before := takeSnapshot(t, l)
	if len(before.procs) > 0 {
		t.Fatalf("processes run %s before the install: %v", l.installed(), before.procs)
	}

	var serverLog string // the log as read before the uninstall removed it
	t.Cleanup(func() {
		if t.Failed() {
			if serverLog == "" {
				data, _ := os.ReadFile(l.logFile)
				serverLog = string(data)
			}
			t.Logf("===== iks log %s (tail)\n%s", l.logFile, tail(serverLog, 80))
		}
		cleanup(t, l, before)
	})

	// ---- install
	args := []string{"sh", filepath.Join(repo, "install.sh"), "--",
		"--node-ip", nodeIP, "--node-name", nodeName, "--cgroup-root", l.cgroupRoot}
	out, err := l.inNetns(t, 6*time.Minute, installEnv(l), args...)
	t.Logf("===== install.sh\n%s", out)
	if err != nil {
		t.Fatalf("install.sh failed: %v", err)
	}
	checkInstalled(t, l)

	// ---- a pod, with a host port so that portmap writes its rules
	ports := ""
	if withIptables {
		ports = fmt.Sprintf("    ports:\n    - containerPort: 8080\n      hostPort: %s\n      protocol: TCP\n", hostPort)
	}
	manifest := fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s
  namespace: default
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: pause
    image: iks.local/pause:1
    imagePullPolicy: Never
%s`, podName, ports)
	if out, err := l.kubectl(t, manifest, "apply", "-f", "-"); err != nil {
		t.Fatalf("create pod: %v\n%s", err, out)
	}
	waitPodRunning(t, l, 3*time.Minute)
	checkRunning(t, l, withIptables)

	// ---- uninstall
	// The uninstall deletes the log: read it through a descriptor opened
	// before, which also shows how the server shut down.
	if f, err := os.Open(l.logFile); err == nil {
		defer func() {
			data, _ := io.ReadAll(f)
			serverLog = string(data)
			f.Close()
		}()
	}
	uninstall := filepath.Join(l.binDir, "iks-uninstall.sh")
	out, err = l.inNetns(t, 3*time.Minute, cleanEnv(), "sh", uninstall)
	t.Logf("===== iks-uninstall.sh\n%s", out)
	if err != nil {
		t.Errorf("iks-uninstall.sh failed: %v", err)
	}

	after := takeSnapshot(t, l)
	before.compare(t, after)
	checkRemoved(t, l)
}

// ---------------------------------------------------------------- steps

// waitLinkLocal waits until the kernel has given the namespace's veths
// their IPv6 link-local addresses (after carrier and duplicate address
// detection), so that the routes snapshot does not race with it.
func waitLinkLocal(t *testing.T, l layout) {
	t.Helper()
	if _, err := os.Stat("/proc/sys/net/ipv6"); err != nil {
		return // no IPv6 in this kernel
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, err := l.inNetns(t, time.Minute, cleanEnv(), "ip", "-6", "-o", "addr", "show", "scope", "link")
		if err != nil {
			t.Fatalf("ip -6 addr in %s: %v\n%s", l.netns, err, out)
		}
		if strings.Contains(out, " eth0 ") && strings.Contains(out, " eth0-peer ") && !strings.Contains(out, "tentative") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the veths in %s got no IPv6 link-local address within 20s:\n%s", l.netns, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func installEnv(l layout) []string {
	return append(cleanEnv(),
		"INSTALL_IKS_BIN_DIR="+l.binDir,
		"IKS_DATA_DIR="+l.dataDir,
		"IKS_KUBECONFIG="+l.kubeconfig,
		"INSTALL_IKS_CONFIG_DIR="+l.configDir,
		"INSTALL_IKS_LOG="+l.logFile,
		"INSTALL_IKS_PIDFILE="+l.pidFile,
		"INSTALL_IKS_SYSTEMD=false",
		"INSTALL_IKS_READY_TIMEOUT=300",
	)
}

// cleanEnv is this process's environment without anything that would
// steer iks or the scripts elsewhere.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "IKS_") || strings.HasPrefix(k, "INSTALL_IKS_") || k == "KUBECONFIG" {
			continue
		}
		env = append(env, kv)
	}
	return env
}

func checkInstalled(t *testing.T, l layout) {
	t.Helper()
	if _, err := os.Stat(l.installed()); err != nil {
		t.Fatalf("install.sh did not install the binary: %v", err)
	}
	for _, name := range []string{"kubectl", "crictl", "ctr"} {
		target, err := os.Readlink(filepath.Join(l.binDir, name))
		if err != nil || target != "iks" {
			t.Errorf("%s/%s: want a symlink to iks, got %q (%v)", l.binDir, name, target, err)
		}
	}
	for _, s := range []string{"iks-killall.sh", "iks-uninstall.sh"} {
		data, err := os.ReadFile(filepath.Join(l.binDir, s))
		if err != nil {
			t.Fatalf("install.sh did not install %s: %v", s, err)
		}
		if want := "IKS_DATA_DIR='" + l.dataDir + "'"; !strings.Contains(string(data), want) {
			t.Errorf("%s does not carry the data dir of the installation (%s)", s, want)
		}
	}
	pid := readPid(t, l.pidFile)
	// The installed binary is a launcher: the server runs the program it
	// extracted beside the bin dir, under the same PID.
	programs := filepath.Join(filepath.Dir(l.binDir), "lib", "iks") + "/"
	if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); !strings.HasPrefix(exe, programs) || filepath.Base(exe) != "iks" {
		t.Errorf("pid file %s names pid %d running %q, want the program %s<version>/iks extracted by %s", l.pidFile, pid, exe, programs, l.installed())
	}
	if _, err := os.Stat(l.kubeconfig); err != nil {
		t.Errorf("admin kubeconfig not written to IKS_KUBECONFIG: %v", err)
	}
	// install.sh waited for Ready; check it independently.
	out, err := l.kubectl(t, "", "get", "node", nodeName, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`)
	if err != nil || strings.TrimSpace(out) != "True" {
		t.Fatalf("node %s is not Ready after install.sh: %q %v", nodeName, out, err)
	}
}

func waitPodRunning(t *testing.T, l layout, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var phase string
	for time.Now().Before(deadline) {
		out, err := l.kubectl(t, "", "get", "pod", podName, "-o", "jsonpath={.status.phase}")
		phase = strings.TrimSpace(out)
		if err == nil && phase == "Running" {
			return
		}
		time.Sleep(time.Second)
	}
	desc, _ := l.kubectl(t, "", "describe", "pod", podName)
	t.Fatalf("pod %s not Running within %s (phase %q)\n%s", podName, timeout, phase, desc)
}

// checkRunning asserts that what the uninstall must remove exists now, so
// that its absence afterwards means something.
func checkRunning(t *testing.T, l layout, withIptables bool) {
	t.Helper()
	links, _ := l.inNetns(t, time.Minute, cleanEnv(), "ip", "-o", "link", "show")
	if !strings.Contains(links, "cali") {
		t.Errorf("no cali* pod interface in the namespace while the pod runs:\n%s", links)
	}
	if len(mountsUnder(t, l.dataDir)) == 0 {
		t.Errorf("nothing mounted under %s while the pod runs", l.dataDir)
	}
	if withIptables {
		rules, _ := l.inNetns(t, time.Minute, cleanEnv(), "iptables-save", "-t", "nat")
		if !strings.Contains(rules, "CNI-HOSTPORT-DNAT") || !strings.Contains(rules, hostPort) {
			t.Errorf("no portmap rule for host port %s while the pod runs:\n%s", hostPort, rules)
		}
	}
	if len(podCgroups(l)) == 0 {
		t.Errorf("no kubepods cgroup under %s while the pod runs", l.cgroupRoot)
	}
	shims := 0
	for _, p := range ourProcs(l) {
		if strings.Contains(p, "containerd-shim-runc-v2") {
			shims++
		}
	}
	if shims == 0 {
		t.Errorf("no containerd shim of this installation runs while the pod runs: %v", ourProcs(l))
	}
}

func checkRemoved(t *testing.T, l layout) {
	t.Helper()
	if procs := ourProcs(l); len(procs) > 0 {
		t.Errorf("processes of the installation still run after the uninstall: %v", procs)
	}
	if pids := cgroupPids(l); len(pids) > 0 {
		t.Errorf("pod processes still run after the uninstall: %v", pids)
	}
	if dirs := podCgroups(l); len(dirs) > 0 {
		t.Errorf("pod cgroups left after the uninstall: %v", dirs)
	}
	for _, m := range cgroupMounts(t) {
		if _, err := os.Stat(filepath.Join(m, l.cgroupRoot)); err == nil {
			t.Errorf("cgroup root %s left in %s", l.cgroupRoot, m)
		}
	}
	if entries, err := os.ReadDir(l.binDir); err == nil {
		for _, e := range entries {
			switch e.Name() {
			case "iks", "kubectl", "crictl", "ctr", "iks-killall.sh", "iks-uninstall.sh":
				t.Errorf("%s left in %s", e.Name(), l.binDir)
			}
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("read %s: %v", l.binDir, err)
	}
	if programs := filepath.Join(filepath.Dir(l.binDir), "lib", "iks"); exists(programs) {
		t.Errorf("the extracted program dir %s is left after the uninstall", programs)
	}
	for _, p := range []string{l.dataDir, l.configDir, l.kubeconfig, l.logFile, l.pidFile} {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s still exists after the uninstall (%v)", p, err)
		}
	}
}

// cleanup runs after the test whatever happened: the installed killall
// script, then a sweep by the test itself of whatever might remain (its
// own processes, mounts, cgroups and host paths it created), so that a
// failed test leaves nothing behind either.
func cleanup(t *testing.T, l layout, before *snapshot) {
	killall := filepath.Join(l.binDir, "iks-killall.sh")
	if _, err := os.Stat(killall); err == nil {
		if out, err := l.inNetns(t, 2*time.Minute, cleanEnv(), "sh", killall); err != nil {
			t.Logf("cleanup: %s: %v\n%s", killall, err, out)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		pids := append(pidsOf(ourProcs(l)), cgroupPids(l)...)
		if len(pids) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("cleanup: processes survive SIGKILL: %v", pids)
			break
		}
		for _, p := range pids {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, prefix := range []string{l.tmp, "/var/lib/kubelet"} {
		for _, m := range mountsUnder(t, prefix) {
			if err := syscall.Unmount(m, 0); err != nil {
				_ = syscall.Unmount(m, syscall.MNT_DETACH)
			}
		}
	}
	dirs := podCgroups(l)
	for _, m := range cgroupMounts(t) {
		dirs = append(dirs, filepath.Join(m, l.cgroupRoot))
	}
	for _, root := range dirs {
		var all []string
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				all = append(all, p)
			}
			return nil
		})
		sort.Slice(all, func(i, j int) bool { return len(all[i]) > len(all[j]) })
		for _, d := range all {
			_ = syscall.Rmdir(d)
		}
	}
	for _, p := range hostPaths {
		if !before.hostPaths[p].exists && p != "/etc/iks" {
			if _, err := os.Lstat(p); err == nil && len(mountsUnder(t, p)) == 0 {
				_ = os.RemoveAll(p)
			}
		}
	}
}

// ---------------------------------------------------------------- snapshot

type pathState struct {
	exists  bool
	entries map[string]bool // relative paths, up to 3 levels deep
}

type snapshot struct {
	mounts    map[string]bool
	cgroups   map[string]bool
	procs     []string
	links     []string
	routes    []string
	xtables   map[string][]string
	nft       []string
	hostPaths map[string]pathState
}

func takeSnapshot(t *testing.T, l layout) *snapshot {
	t.Helper()
	s := &snapshot{mounts: map[string]bool{}, cgroups: map[string]bool{}, xtables: map[string][]string{}, hostPaths: map[string]pathState{}}
	for _, m := range mountPoints(t) {
		s.mounts[m] = true
	}
	for _, m := range cgroupMounts(t) {
		entries, err := os.ReadDir(m)
		if err != nil {
			t.Fatalf("read cgroup hierarchy %s: %v", m, err)
		}
		for _, e := range entries {
			if e.IsDir() {
				s.cgroups[filepath.Join(m, e.Name())] = true
			}
		}
	}
	s.procs = ourProcs(l)

	out, err := l.inNetns(t, time.Minute, cleanEnv(), "ip", "-o", "link", "show")
	if err != nil {
		t.Fatalf("ip link in %s: %v\n%s", l.netns, err, out)
	}
	for _, line := range strings.Split(out, "\n") {
		// "3: eth0@eth0-peer: <...> ..."
		if f := strings.SplitN(line, ": ", 3); len(f) == 3 {
			name, _, _ := strings.Cut(f[1], "@")
			if !kernelFallbackDevice[name] {
				s.links = append(s.links, name)
			}
		}
	}
	sort.Strings(s.links)
	for _, fam := range []string{"-4", "-6"} {
		out, err := l.inNetns(t, time.Minute, cleanEnv(), "ip", fam, "route", "show", "table", "all")
		if err != nil {
			t.Fatalf("ip %s route in %s: %v\n%s", fam, l.netns, err, out)
		}
		for _, line := range strings.Split(out, "\n") {
			if line = strings.TrimSpace(line); line != "" {
				s.routes = append(s.routes, fam+" "+line)
			}
		}
	}
	sort.Strings(s.routes)

	for _, save := range []string{"iptables-legacy-save", "ip6tables-legacy-save", "iptables-nft-save", "ip6tables-nft-save", "iptables-save", "ip6tables-save"} {
		if _, err := exec.LookPath(save); err != nil {
			continue
		}
		out, err := l.inNetns(t, time.Minute, cleanEnv(), save)
		if err != nil {
			t.Logf("%s in %s: %v (not compared)\n%s", save, l.netns, err, out)
			continue
		}
		s.xtables[save] = normalizeXtables(out)
	}
	if _, err := exec.LookPath("nft"); err == nil {
		out, err := l.inNetns(t, time.Minute, cleanEnv(), "nft", "list", "ruleset")
		if err != nil {
			t.Fatalf("nft list ruleset in %s: %v\n%s", l.netns, err, out)
		}
		s.nft = normalizeNft(out)
	}

	for _, p := range hostPaths {
		st := pathState{entries: map[string]bool{}}
		if _, err := os.Lstat(p); err == nil {
			st.exists = true
			_ = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
				if err != nil || path == p {
					return nil
				}
				rel, _ := filepath.Rel(p, path)
				st.entries[rel] = true
				if d.IsDir() && strings.Count(rel, "/") >= 2 {
					return filepath.SkipDir
				}
				return nil
			})
		}
		s.hostPaths[p] = st
	}
	return s
}

// compare reports everything the installation added and the uninstall did
// not take away. Things that disappeared meanwhile are not the test's
// business (other software may remove its own).
func (s *snapshot) compare(t *testing.T, after *snapshot) {
	t.Helper()
	for m := range after.mounts {
		if !s.mounts[m] && !otherHarness(m) {
			t.Errorf("new mount left after the uninstall: %s", m)
		}
	}
	for c := range after.cgroups {
		if !s.cgroups[c] && !strings.HasPrefix(filepath.Base(c), "iks-test-") {
			t.Errorf("new cgroup left after the uninstall: %s", c)
		}
	}
	if len(after.procs) > 0 {
		t.Errorf("processes of the installation left: %v", after.procs)
	}
	diffLists(t, "links in the namespace", s.links, after.links)
	diffLists(t, "routes in the namespace", s.routes, after.routes)
	for save, rules := range s.xtables {
		diffLists(t, save+" in the namespace", rules, after.xtables[save])
	}
	diffLists(t, "nftables ruleset in the namespace", s.nft, after.nft)
	for _, p := range hostPaths {
		b, a := s.hostPaths[p], after.hostPaths[p]
		if a.exists && !b.exists {
			t.Errorf("%s did not exist before the install and is left after the uninstall (entries: %v)", p, keys(a.entries))
			continue
		}
		if p == "/var/lib/kubelet" && b.exists {
			// Not iks's: the uninstall leaves it alone (it removes only a
			// /var/lib/kubelet that the install found absent).
			t.Logf("/var/lib/kubelet existed before the install: its entries are not compared")
			continue
		}
		var added []string
		for e := range a.entries {
			if !b.entries[e] {
				added = append(added, e)
			}
		}
		if len(added) > 0 {
			sort.Strings(added)
			t.Errorf("entries left in %s after the uninstall: %v", p, added)
		}
	}
}

// kernelFallbackDevice lists the devices the kernel adds to every network
// namespace when a tunnel module loads; they cannot be deleted and are no
// leftover of iks.
var kernelFallbackDevice = map[string]bool{
	"tunl0": true, "sit0": true, "ip6tnl0": true, "gre0": true, "gretap0": true, "erspan0": true,
	"ip_vti0": true, "ip6_vti0": true, "ip6gre0": true,
}

// normalizeXtables turns iptables-save output into comparable lines:
// rules and chains with their table, without comments and counters. An
// empty built-in chain with policy ACCEPT equals no chain: iptables-restore
// leaves the tables it rewrote behind with such chains.
func normalizeXtables(out string) []string {
	var lines []string
	table := ""
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "", strings.HasPrefix(line, "#"), line == "COMMIT":
		case strings.HasPrefix(line, "*"):
			table = line[1:]
		case strings.HasPrefix(line, ":"):
			f := strings.Fields(line[1:])
			if len(f) >= 2 && f[1] == "ACCEPT" {
				continue // built-in chain, default policy
			}
			if len(f) >= 2 {
				lines = append(lines, table+" :"+f[0]+" "+f[1])
			}
		default:
			lines = append(lines, table+" "+line)
		}
	}
	sort.Strings(lines)
	return lines
}

var nftCounter = regexp.MustCompile(`counter packets \d+ bytes \d+`)

// normalizeNft turns `nft list ruleset` into comparable lines: every rule,
// set element and non-base chain with its table and chain. Base chains
// without rules and with policy accept, and so empty tables, drop out
// (iptables-nft leaves such tables behind after a restore).
func normalizeNft(out string) []string {
	var lines, block []string
	table, head := "", ""
	depth := 0
	for _, raw := range strings.Split(out, "\n") {
		line := strings.TrimSpace(nftCounter.ReplaceAllString(raw, "counter"))
		if line == "" {
			continue
		}
		switch {
		case strings.HasSuffix(line, "{"):
			depth++
			if depth == 1 {
				table = strings.TrimSuffix(line, " {")
			} else if depth == 2 {
				head, block = strings.TrimSuffix(line, " {"), nil
			} else {
				block = append(block, line)
			}
		case line == "}":
			if depth == 2 {
				base, policyAccept := false, false
				var content []string
				for _, b := range block {
					if strings.HasPrefix(b, "type ") && strings.Contains(b, " hook ") {
						base = true
						policyAccept = !strings.Contains(b, "policy ") || strings.Contains(b, "policy accept")
						continue
					}
					content = append(content, b)
				}
				if !base || !policyAccept || len(content) > 0 {
					lines = append(lines, table+" | "+head)
					for _, c := range content {
						lines = append(lines, table+" | "+head+" | "+c)
					}
				}
			} else if depth > 2 {
				block = append(block, line)
			}
			depth--
		default:
			if depth >= 2 {
				block = append(block, line)
			} else {
				lines = append(lines, table+" | "+line)
			}
		}
	}
	sort.Strings(lines)
	return lines
}

func diffLists(t *testing.T, what string, before, after []string) {
	t.Helper()
	b := map[string]int{}
	for _, x := range before {
		b[x]++
	}
	var added, removed []string
	for _, x := range after {
		if b[x] > 0 {
			b[x]--
		} else {
			added = append(added, x)
		}
	}
	for x, n := range b {
		for ; n > 0; n-- {
			removed = append(removed, x)
		}
	}
	if len(added) > 0 || len(removed) > 0 {
		sort.Strings(removed)
		t.Errorf("%s differ after the uninstall:\n  added:   %q\n  removed: %q", what, added, removed)
	}
}

// ---------------------------------------------------------------- host state

// mountPoints lists the mount points of this mount namespace (the host's).
func mountPoints(t *testing.T) []string {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) > 4 {
			out = append(out, unescapeMount(f[4]))
		}
	}
	return out
}

func unescapeMount(s string) string {
	return strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`).Replace(s)
}

// mountsUnder lists mount points strictly below dir, deepest first.
func mountsUnder(t *testing.T, dir string) []string {
	var out []string
	for _, m := range mountPoints(t) {
		if strings.HasPrefix(m, dir+"/") {
			out = append(out, m)
		}
	}
	sort.Slice(out, func(i, j int) bool { return strings.Count(out[i], "/") > strings.Count(out[j], "/") })
	return out
}

// cgroupMounts lists the mount points of the cgroup hierarchies.
func cgroupMounts(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		_, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		fstype := strings.Fields(post)[0]
		if fstype != "cgroup" && fstype != "cgroup2" {
			continue
		}
		mp := unescapeMount(strings.Fields(line)[4])
		if !seen[mp] {
			seen[mp] = true
			out = append(out, mp)
		}
	}
	return out
}

// podCgroups lists the kubepods cgroups under the node's cgroup root.
func podCgroups(l layout) []string {
	var out []string
	data, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(data), "\n") {
		_, post, ok := strings.Cut(line, " - ")
		if !ok || (strings.Fields(post)[0] != "cgroup" && strings.Fields(post)[0] != "cgroup2") {
			continue
		}
		root := filepath.Join(unescapeMount(strings.Fields(line)[4]), l.cgroupRoot)
		matches, _ := filepath.Glob(filepath.Join(root, "*kubepods*"))
		out = append(out, matches...)
	}
	return out
}

func cgroupPids(l layout) []int {
	var out []int
	for _, d := range podCgroups(l) {
		_ = filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
			if err != nil || e.Name() != "cgroup.procs" {
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

// ourProcs lists "pid cmdline" of the processes running the installed
// binary (or the copy it replaced) or an executable under the data dir.
func ourProcs(l layout) []string {
	var out []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err != nil {
			continue
		}
		exe = strings.TrimSuffix(exe, " (deleted)")
		if exe != l.installed() && !strings.HasPrefix(exe, l.dataDir+"/") {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		out = append(out, fmt.Sprintf("%d %s", pid, strings.ReplaceAll(strings.TrimRight(string(cmdline), "\x00"), "\x00", " ")))
	}
	return out
}

func pidsOf(procs []string) []int {
	var out []int
	for _, p := range procs {
		f, _, _ := strings.Cut(p, " ")
		if pid, err := strconv.Atoi(f); err == nil {
			out = append(out, pid)
		}
	}
	return out
}

// ---------------------------------------------------------------- helpers

// inNetns runs a command inside the test's network namespace (and nothing
// else: nsenter --net keeps /sys and the cgroup mounts of the host).
func (l layout) inNetns(t *testing.T, timeout time.Duration, env []string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"--net=/run/netns/" + l.netns, "--"}, args...)...)
	cmd.Env = env
	cmd.Dir = l.tmp
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("%s: timed out after %s: %w", strings.Join(args, " "), timeout, err)
	}
	return string(out), err
}

// kubectl runs the installed kubectl symlink (argv[0] dispatch) against
// the installation's admin kubeconfig, with stdin if given.
func (l layout) kubectl(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	full := append([]string{"--net=/run/netns/" + l.netns, "--", filepath.Join(l.binDir, "kubectl"), "--kubeconfig", l.kubeconfig}, args...)
	cmd := exec.CommandContext(ctx, "nsenter", full...)
	cmd.Env = append(cleanEnv(), "IKS_DATA_DIR="+l.dataDir)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func readPid(t *testing.T, path string) int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("pid file: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatalf("pid file %s holds %q: %v", path, data, err)
	}
	return pid
}

func randomID(t *testing.T) string {
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// tail returns the last n lines of s, each cut to 600 bytes.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	for i, line := range lines {
		if len(line) > 600 {
			lines[i] = line[:600] + " [...]"
		}
	}
	return strings.Join(lines, "\n")
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
