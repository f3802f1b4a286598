package testutil

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/iks-dev/iks/internal/netapi"
)

// Node is one iks process (server) under test, in its own network and
// mount namespaces, with its own data dir and cgroup root.
type Node struct {
	t          testing.TB
	Role       string // "server" (default) or "agent"
	ServerURL  string // agents: https://SERVER:6443
	Token      string // agents: join token
	Name       string
	IP         string
	Bin        string
	DataDir    string
	CgroupRoot string
	Net        *Netns
	Mnt        *MountNS
	LogPath    string
	// Env is added to the environment of the node's processes (e.g. a
	// PATH without iptables).
	Env []string
	// CPU, when set, is the CPU cgroup the node's processes start in (a
	// machine of its own when several nodes share this one).
	CPU *CPUGroup

	cmd  *exec.Cmd
	done chan error
}

// BinPath returns the iks binary under test: $IKS_BIN or <repo>/bin/iks.
func BinPath(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("IKS_BIN"); p != "" {
		return p
	}
	wd, _ := os.Getwd()
	for d := wd; d != "/"; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			p := filepath.Join(d, "bin", "iks")
			if _, err := os.Stat(p); err != nil {
				t.Fatalf("%s not built: run `make` first", p)
			}
			return p
		}
	}
	t.Fatal("cannot find the repository root")
	return ""
}

// NewNode prepares namespaces, data dir and cgroup root; nothing runs yet.
// id must be short and unique on the machine.
func NewNode(t testing.TB, id, ip string) *Node {
	t.Helper()
	n := newNode(t, id, ip)
	// A veth pair with both ends inside: the node's interface and a
	// dead-end peer. No route leads out of the namespace.
	MustRun(t, "ip", "-n", n.Name, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0-peer")
	MustRun(t, "ip", "-n", n.Name, "addr", "add", ip+"/24", "dev", "eth0")
	MustRun(t, "ip", "-n", n.Name, "link", "set", "eth0", "up")
	MustRun(t, "ip", "-n", n.Name, "link", "set", "eth0-peer", "up")
	return n
}

// NewNodeOn prepares a node attached to a subnet of nw as host h. Its
// router-side link is named "v-<id>" (see Network.Cut).
func NewNodeOn(t testing.TB, id string, nw *Network, subnet string, h int) *Node {
	t.Helper()
	n := newNode(t, id, nw.IP(subnet, h))
	nw.Attach(n.Net, subnet, n.IP, n.Peer())
	return n
}

// Peer is the router-side name of the node's link.
func (n *Node) Peer() string { return "v-" + strings.TrimPrefix(n.Name, "iks-") }

func newNode(t testing.TB, id, ip string) *Node {
	n := &Node{t: t, Role: "server", Name: "iks-" + id, IP: ip, Bin: BinPath(t), CgroupRoot: "/iks-test-" + id}
	n.DataDir = filepath.Join(t.TempDir(), "data")
	n.LogPath = filepath.Join(filepath.Dir(n.DataDir), "iks.log")
	n.Net = NewNetns(t, n.Name)
	n.Mnt = NewMountNS(t, n.Name)
	t.Cleanup(n.cleanup) // runs before the namespaces' cleanups
	return n
}

// AsAgent makes the node join serverURL with token when started.
func (n *Node) AsAgent(serverURL, token string) *Node {
	n.Role, n.ServerURL, n.Token = "agent", serverURL, token
	return n
}

// WaitReady waits for the latest start's "node NAME is Ready" line.
func (n *Node) WaitReady(timeout time.Duration) {
	n.t.Helper()
	deadline := time.Now().Add(timeout)
	want := fmt.Sprintf("node %s is Ready", n.Name)
	for time.Now().Before(deadline) {
		if exited, err := n.Exited(); exited {
			n.t.Fatalf("%s exited before the node was Ready: %v", n.Name, err)
		}
		log := n.Log()
		if i := strings.LastIndex(log, "===== start"); i >= 0 && strings.Contains(log[i:], want) {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	n.t.Fatalf("node %s not Ready after %s", n.Name, timeout)
}

// EvictionArg keeps test nodes from reporting disk pressure because of
// how full the shared test machine's disk is: kubelet's default hard
// eviction (image fs below 15 % free) taints every node of every test
// cluster at once on a machine with a large reserved block count, and no
// pod schedules. Eviction is upstream kubelet behaviour, not under test.
var EvictionArg = []string{"--kubelet-arg", "eviction-hard=imagefs.available<1%,nodefs.available<1%,nodefs.inodesFree<1%"}

// Args is the default server command line of this node.
func (n *Node) Args(extra ...string) []string {
	common := append([]string{"--data-dir", n.DataDir, "--node-ip", n.IP, "--node-name", n.Name,
		"--cgroup-root", n.CgroupRoot, "--config", "/dev/null"}, EvictionArg...)
	if n.Role == "agent" {
		return append(append([]string{"agent", "--server", n.ServerURL, "--token", n.Token}, common...), extra...)
	}
	return append(append([]string{"server", "--write-kubeconfig", ""}, common...), extra...)
}

// Command returns an exec.Cmd running the iks binary inside the node's
// namespaces.
func (n *Node) Command(args ...string) *exec.Cmd {
	full := append([]string{"--net=" + n.Net.Path(), "--mount=" + n.Mnt.File, "--", n.Bin}, args...)
	cmd := exec.Command("nsenter", full...)
	cmd.Env = append(append(os.Environ(), "IKS_DATA_DIR="+n.DataDir), n.Env...)
	return cmd
}

// Start starts `iks server` with the node's arguments plus extra.
func (n *Node) Start(extra ...string) {
	n.t.Helper()
	log, err := os.OpenFile(n.LogPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		n.t.Fatal(err)
	}
	fmt.Fprintf(log, "===== start %s\n", time.Now().Format(time.RFC3339Nano))
	cmd := n.Command(n.Args(extra...)...)
	if n.CPU != nil {
		cmd.Args = n.CPU.Wrap(cmd.Path, cmd.Args[1:]...)
		if cmd.Path, err = exec.LookPath("sh"); err != nil {
			n.t.Fatal(err)
		}
	}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	n.cmd = cmd
	n.done = make(chan error, 1)
	go func() { n.done <- cmd.Wait(); log.Close() }()
}

// Stop sends SIGTERM and waits up to timeout; it returns how long the
// server took to exit.
func (n *Node) Stop(timeout time.Duration) (time.Duration, error) {
	if n.cmd == nil {
		return 0, nil
	}
	t0 := time.Now()
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-n.done:
		n.cmd = nil
		return time.Since(t0), err
	case <-time.After(timeout):
		n.Kill()
		return time.Since(t0), fmt.Errorf("server did not exit within %s of SIGTERM", timeout)
	}
}

// Kill sends SIGKILL to the server (its containerd child dies with it;
// shims and pods keep running).
func (n *Node) Kill() {
	if n.cmd == nil {
		return
	}
	_ = syscall.Kill(n.cmd.Process.Pid, syscall.SIGKILL)
	<-n.done
	n.cmd = nil
}

// Exited reports whether the server process ended, and its error.
func (n *Node) Exited() (bool, error) {
	if n.cmd == nil {
		return true, nil
	}
	select {
	case err := <-n.done:
		n.done <- err
		return true, err
	default:
		return false, nil
	}
}

// Kubeconfig is the admin kubeconfig of this node's cluster.
func (n *Node) Kubeconfig() string {
	return filepath.Join(n.DataDir, "server", "cred", "admin.kubeconfig")
}

// restConfig loads a kubeconfig and dials through the node's netns.
func (n *Node) restConfig(kubeconfig string) *rest.Config {
	n.t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		n.t.Fatal(err)
	}
	cfg.Dial = n.Net.DialContext
	cfg.Timeout = 15 * time.Second
	return cfg
}

// Client returns a clientset that reaches the apiserver inside the netns.
func (n *Node) Client() *kubernetes.Clientset {
	n.t.Helper()
	cs, err := kubernetes.NewForConfig(n.restConfig(n.Kubeconfig()))
	if err != nil {
		n.t.Fatal(err)
	}
	return cs
}

// BlockClient returns an IPAMBlock client with the credentials of
// kubeconfig (the admin's, or a node's), dialling through the node's netns.
func (n *Node) BlockClient(kubeconfig string) *netapi.BlockClient {
	n.t.Helper()
	bc, err := netapi.NewBlockClient(n.restConfig(kubeconfig))
	if err != nil {
		n.t.Fatal(err)
	}
	return bc
}

// Kubectl runs `iks kubectl` inside the node.
func (n *Node) Kubectl(args ...string) (string, error) {
	cmd := n.Command(append([]string{"kubectl", "--kubeconfig", n.Kubeconfig()}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// HTTPGet fetches a URL from inside the node's network namespace.
func (n *Node) HTTPGet(ctx context.Context, url string) (string, error) {
	return n.Net.HTTPGet(ctx, url, 5*time.Second)
}

// Log returns the server log so far.
func (n *Node) Log() string {
	data, _ := os.ReadFile(n.LogPath)
	return string(data)
}
