package routing

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// helperEnv makes the test binary run one routing node instead of the
// tests: the privileged tests start it with `ip netns exec`, so the BGP
// speaker, its sockets and its netlink calls all live in that namespace.
const helperEnv = "IKS_ROUTING_TEST_NODE"

type helperConfig struct {
	Name       string
	IP         netip.Addr
	Subnet     netip.Prefix
	Blocks     []netip.Prefix
	Peers      []Peer
	Encap      string
	StatusFile string
	StaleGrace time.Duration
	GR         time.Duration // graceful restart time (0 = off)
	// PeersFile, when set, is re-read on SIGUSR1 and replaces Peers (a
	// Node added or deleted).
	PeersFile string
}

func TestMain(m *testing.M) {
	if spec := os.Getenv(helperEnv); spec != "" {
		os.Exit(runHelperNode(spec))
	}
	os.Exit(m.Run())
}

// runHelperNode runs a Router until SIGTERM, writing its Status to a file
// every 200ms.
func runHelperNode(spec string) int {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var hc helperConfig
	if err := json.Unmarshal([]byte(spec), &hc); err != nil {
		log.Error("bad helper config", "err", err)
		return 2
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	reload := make(chan os.Signal, 1)
	signal.Notify(reload, syscall.SIGUSR1)
	ctx := context.Background()
	peers := NewStaticPeers(hc.Peers...)
	r := New(Config{
		NodeName: hc.Name, NodeIP: hc.IP, NodeSubnet: hc.Subnet, Encap: hc.Encap,
		LocalBlocks: StaticBlocks(hc.Blocks...), Peers: peers,
		ResyncInterval: 2 * time.Second, StaleGrace: hc.StaleGrace, GracefulRestartTime: hc.GR,
	}, log)
	if err := r.Init(ctx); err != nil {
		log.Error("init", "err", err)
		return 1
	}
	if err := r.Start(ctx); err != nil {
		log.Error("start", "err", err)
		return 1
	}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-reload:
			var ps []Peer
			b, err := os.ReadFile(hc.PeersFile)
			if err == nil {
				err = json.Unmarshal(b, &ps)
			}
			if err != nil {
				log.Error("reload peers", "err", err)
				continue
			}
			peers.Set(ps...)
		case <-sig:
			stopCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			if err := r.Stop(stopCtx); err != nil {
				log.Error("stop", "err", err)
				return 1
			}
			return 0
		case <-tick.C:
			st, err := r.Status(ctx)
			if err != nil {
				log.Warn("status", "err", err)
				continue
			}
			b, _ := json.Marshal(st)
			tmp := hc.StatusFile + ".tmp"
			if os.WriteFile(tmp, b, 0o600) == nil {
				_ = os.Rename(tmp, hc.StatusFile)
			}
		}
	}
}

// testNode is a helper node process.
type testNode struct {
	name   string
	cmd    *exec.Cmd
	status string
	done   chan error

	once    sync.Once
	stopErr error
}

// startNode runs a Router in namespace ns; it is stopped at cleanup, and
// its log is shown when the test failed.
func startNode(t *testing.T, ns string, hc helperConfig) *testNode {
	t.Helper()
	dir := t.TempDir()
	hc.StatusFile = filepath.Join(dir, "status.json")
	spec, err := json.Marshal(hc)
	if err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", ns, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+string(spec))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		t.Fatalf("start node %s: %v", hc.Name, err)
	}
	n := &testNode{name: hc.Name, cmd: cmd, status: hc.StatusFile, done: make(chan error, 1)}
	go func() { n.done <- cmd.Wait(); logFile.Close() }()
	t.Cleanup(func() {
		if err := n.stop(); err != nil {
			t.Errorf("node %s: %v", hc.Name, err)
		}
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("log of node %s:\n%s", hc.Name, b)
		}
	})
	return n
}

// stop sends SIGTERM and waits for a clean exit; it is idempotent.
func (n *testNode) stop() error {
	n.once.Do(func() {
		_ = n.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-n.done:
			if err != nil {
				n.stopErr = fmt.Errorf("exited with %w", err)
			}
		case <-time.After(15 * time.Second):
			_ = n.cmd.Process.Kill()
			<-n.done
			n.stopErr = fmt.Errorf("did not stop within 15s of SIGTERM; killed")
		}
	})
	return n.stopErr
}

// kill sends SIGKILL: sessions drop without a NOTIFICATION, as when the
// agent crashes.
func (n *testNode) kill() {
	n.once.Do(func() {
		_ = n.cmd.Process.Kill()
		<-n.done
	})
}

// setPeers replaces the node's peers (see helperConfig.PeersFile).
func (n *testNode) setPeers(t *testing.T, file string, peers ...Peer) {
	t.Helper()
	b, _ := json.Marshal(peers)
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := n.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
}

// readStatus returns the node's last reported Status.
func (n *testNode) readStatus() (Status, error) {
	var st Status
	b, err := os.ReadFile(n.status)
	if err != nil {
		return st, err
	}
	return st, json.Unmarshal(b, &st)
}

// waitFor polls cond until it returns nil or the deadline passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true within %s: %v", what, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
