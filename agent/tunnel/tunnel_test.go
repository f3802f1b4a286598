package tunnel

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	servertunnel "github.com/iks-dev/iks/server/tunnel"
	"github.com/iks-dev/iks/server/tunnel/tunneltest"
)

// These tests run the real tunnel server and agent on loopback only.

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// logBuffer collects log lines from several goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newLogs(t *testing.T) (*logBuffer, *slog.Logger) {
	l := &logBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", l)
		}
	})
	return l, slog.New(slog.NewTextHandler(l, nil))
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, within, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func logged(l *logBuffer, s string) func() error {
	return func() error {
		if !strings.Contains(l.String(), s) {
			return fmt.Errorf("no log line with %q", s)
		}
		return nil
	}
}

func startServer(t *testing.T, cfg servertunnel.Config, log *slog.Logger) *servertunnel.Server {
	t.Helper()
	s := servertunnel.New(cfg, log)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Init(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop(context.Background()) })
	if err := s.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

func startAgent(t *testing.T, cfg Config, log *slog.Logger) *Agent {
	t.Helper()
	a := New(cfg, log)
	if err := a.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := a.Stop(context.Background()); err != nil {
			t.Errorf("stop agent: %v", err)
		}
	})
	return a
}

// The apiserver's path: konnectivity client over the socket, server, agent,
// a local HTTP server; then the server restarts and the tunnel comes back.
func TestTunnelCarriesTrafficAndReconnectsAfterServerRestart(t *testing.T) {
	logs, log := newLogs(t)
	p := tunneltest.NewPKI(t)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "hello from node-a")
	}))
	defer backend.Close()
	target := backend.Listener.Addr().String() // 127.0.0.1:port

	srvCfg := servertunnel.Config{
		UDSPath:          filepath.Join(t.TempDir(), "konnectivity-server.sock"),
		AgentBindAddress: netip.MustParseAddr("127.0.0.1"),
		AgentPort:        freePort(t),
		ServerCert:       p.ServerCert, ServerKey: p.ServerKey, ClusterCACert: p.CACert,
	}
	srv := startServer(t, srvCfg, log)

	// kubelet writes its client certificate (one PEM with the key) only
	// after TLS bootstrap, so the agent starts before it exists.
	nodeCert, nodeKey := p.NodeClientCert("node-a")
	combined := filepath.Join(t.TempDir(), "kubelet-client-current.pem")
	agent := startAgent(t, Config{
		ServerHost: "127.0.0.1", ServerPort: srvCfg.AgentPort, CACert: p.CACert,
		ClientCert: combined, ClientKey: combined,
		NodeName: "node-a", NodeIP: netip.MustParseAddr("127.0.0.1"),
	}, log)
	eventually(t, 5*time.Second, "log of the wait for the certificate", logged(logs, "waits for the kubelet client certificate"))
	if agent.Connected() {
		t.Fatal("connected without a client certificate")
	}
	writeCombined(t, combined, nodeCert, nodeKey)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := agent.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	get := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		body, err := tunneltest.Get(ctx, srvCfg.UDSPath, target)
		if err == nil && body != "hello from node-a" {
			err = fmt.Errorf("unexpected body %q", body)
		}
		return err
	}
	eventually(t, 10*time.Second, "GET through the tunnel", get)
	if n := srv.ConnectedAgents(); n != 1 {
		t.Fatalf("server sees %d agents, want 1", n)
	}

	if err := srv.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "agent noticing the server is gone", func() error {
		if agent.Connected() {
			return fmt.Errorf("still connected")
		}
		return nil
	})
	eventually(t, 10*time.Second, "log of the lost tunnel", logged(logs, "tunnel to the konnectivity server lost"))
	eventually(t, 15*time.Second, "log of the unreachable server", logged(logs, "cannot reach the konnectivity server"))

	srv = startServer(t, srvCfg, log) // same socket and port
	// Backoff is capped at 10s; allow two full periods.
	eventually(t, 30*time.Second, "GET through the tunnel after the server restart", get)
	if n := strings.Count(logs.String(), "tunnel connected to the konnectivity server"); n < 2 {
		t.Fatalf("%d connect lines, want 2", n)
	}
}

// An agent the server refuses says why in a clear log line.
func TestAgentLogsWhyTheServerRefusesIt(t *testing.T) {
	logs, log := newLogs(t)
	p := tunneltest.NewPKI(t)
	srvCfg := servertunnel.Config{
		UDSPath:          filepath.Join(t.TempDir(), "konnectivity-server.sock"),
		AgentBindAddress: netip.MustParseAddr("127.0.0.1"),
		AgentPort:        freePort(t),
		ServerCert:       p.ServerCert, ServerKey: p.ServerKey, ClusterCACert: p.CACert,
	}
	srv := startServer(t, srvCfg, discard())
	cert, key := p.NodeClientCert("node-a")
	agent := startAgent(t, Config{
		ServerHost: "127.0.0.1", ServerPort: srvCfg.AgentPort, CACert: p.CACert, ClientCert: cert, ClientKey: key,
		NodeName: "node-b", NodeIP: netip.MustParseAddr("127.0.0.1"), // not the certificate's node
	}, log)
	eventually(t, 10*time.Second, "log of the refusal", logged(logs, "PermissionDenied"))
	if !strings.Contains(logs.String(), "cannot reach the konnectivity server") {
		t.Fatal("refusal not reported as an unreachable server")
	}
	if agent.Connected() || srv.ConnectedAgents() != 0 {
		t.Fatal("a refused agent is connected")
	}
}

func writeCombined(t *testing.T, path, cert, key string) {
	t.Helper()
	c, err := os.ReadFile(cert)
	if err != nil {
		t.Fatal(err)
	}
	k, err := os.ReadFile(key)
	if err != nil {
		t.Fatal(err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(c, k...), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}
