package tunnel

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	agentproto "sigs.k8s.io/apiserver-network-proxy/proto/agent"
	"sigs.k8s.io/apiserver-network-proxy/proto/header"

	"github.com/iks-dev/iks/server/tunnel/tunneltest"
)

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func testConfig(t *testing.T, p *tunneltest.PKI) Config {
	return Config{
		UDSPath:          filepath.Join(t.TempDir(), "run", "konnectivity-server.sock"),
		AgentBindAddress: netip.MustParseAddr("127.0.0.1"),
		AgentPort:        freePort(t),
		ServerCert:       p.ServerCert, ServerKey: p.ServerKey, ClusterCACert: p.CACert,
	}
}

func startServer(t *testing.T, cfg Config) *Server {
	t.Helper()
	s := New(cfg, discard())
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

// connectAgent opens an agent stream as konnectivity-agent does and
// returns the error of its header (where a refusal shows).
func connectAgent(t *testing.T, cfg Config, caFile, cert, key, agentID, idents string) (cancel func(), err error) {
	t.Helper()
	_, cancel, err = openAgentStream(t, cfg, caFile, cert, key, agentID, idents)
	return cancel, err
}

func openAgentStream(t *testing.T, cfg Config, caFile, cert, key, agentID, idents string) (agentproto.AgentService_ConnectClient, func(), error) {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	creds := credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: pool, ServerName: "127.0.0.1"})
	conn, err := grpc.NewClient(cfg.AgentAddress(), grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	cancel := func() { stop(); _ = conn.Close() }
	ctx = metadata.AppendToOutgoingContext(ctx, header.AgentID, agentID, header.AgentIdentifiers, idents)
	stream, err := agentproto.NewAgentServiceClient(conn).Connect(ctx)
	if err != nil {
		return nil, cancel, err
	}
	md, err := stream.Header()
	if md == nil && err == nil { // ended without headers: the status says why
		_, err = stream.Recv()
	}
	return stream, cancel, err
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestServerAdmitsOnlyNodeAgentsUnderTheirOwnName(t *testing.T) {
	p := tunneltest.NewPKI(t)
	cfg := testConfig(t, p)
	s := startServer(t, cfg)
	nodeCert, nodeKey := p.NodeClientCert("node-a")
	adminCert, adminKey := p.ClientCert("admin", "kubernetes-admin", "system:masters")
	notNodesCert, notNodesKey := p.ClientCert("no-group", "system:node:node-a")

	for _, tc := range []struct {
		name, cert, key, id, idents string
	}{
		{"admin certificate", adminCert, adminKey, "node-a", "host=node-a"},
		{"node CN without system:nodes", notNodesCert, notNodesKey, "node-a", "host=node-a"},
		{"agent ID of another node", nodeCert, nodeKey, "node-b", "host=node-a"},
		{"host of another node", nodeCert, nodeKey, "node-a", "ipv4=10.0.0.1&host=node-b"},
	} {
		cancel, err := connectAgent(t, cfg, p.CACert, tc.cert, tc.key, tc.id, tc.idents)
		cancel()
		if status.Code(err) != codes.PermissionDenied {
			t.Errorf("%s: want PermissionDenied, got %v", tc.name, err)
		}
	}
	if n := s.ConnectedAgents(); n != 0 {
		t.Fatalf("%d agents registered after refusals", n)
	}

	cancel, err := connectAgent(t, cfg, p.CACert, nodeCert, nodeKey, "node-a", "ipv4=127.0.0.1&host=node-a")
	if err != nil {
		t.Fatalf("node agent refused: %v", err)
	}
	waitFor(t, "the agent to register", func() bool { return s.ConnectedAgents() == 1 })
	cancel()
	waitFor(t, "the agent to unregister", func() bool { return s.ConnectedAgents() == 0 })
}

// A node that connects again (its old connection silently dead) replaces
// its previous stream at once.
func TestServerReplacesANodesPreviousStream(t *testing.T) {
	p := tunneltest.NewPKI(t)
	cfg := testConfig(t, p)
	s := startServer(t, cfg)
	cert, key := p.NodeClientCert("node-a")
	old, cancelOld, err := openAgentStream(t, cfg, p.CACert, cert, key, "node-a", "host=node-a")
	if err != nil {
		t.Fatal(err)
	}
	defer cancelOld()
	_, cancelNew, err := openAgentStream(t, cfg, p.CACert, cert, key, "node-a", "host=node-a")
	if err != nil {
		t.Fatal(err)
	}
	defer cancelNew()
	ended := make(chan error, 1)
	go func() { _, err := old.Recv(); ended <- err }() // the server sends nothing: only a close ends it
	select {
	case err := <-ended:
		if err == nil {
			t.Fatal("old stream received a packet instead of being closed")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("old stream of the node still open 10s after it reconnected")
	}
	if n := s.ConnectedAgents(); n != 1 {
		t.Fatalf("%d agents registered, want 1", n)
	}
}

func TestServerRestartsOnTheSameSocketAndPort(t *testing.T) {
	p := tunneltest.NewPKI(t)
	cfg := testConfig(t, p)
	s := startServer(t, cfg)
	for range 2 { // idempotent
		if err := s.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Lstat(cfg.UDSPath); !os.IsNotExist(err) {
		t.Fatalf("socket left after stop: %v", err)
	}
	startServer(t, cfg).Stop(context.Background())

	// A socket left by a crashed run is replaced.
	l, err := net.Listen("unix", cfg.UDSPath)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	s = startServer(t, cfg)
	nodeCert, nodeKey := p.NodeClientCert("node-a")
	cancel, err := connectAgent(t, cfg, p.CACert, nodeCert, nodeKey, "node-a", "host=node-a")
	defer cancel()
	if err != nil {
		t.Fatalf("agent refused after restart: %v", err)
	}
}

func TestServerRefusesToTakeOverTheSocketPath(t *testing.T) {
	p := tunneltest.NewPKI(t)
	cfg := testConfig(t, p)
	startServer(t, cfg)
	other := New(cfg, discard())
	if err := other.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "served by another process") {
		t.Fatalf("second server on a live socket: %v", err)
	}

	cfg = testConfig(t, p)
	if err := os.MkdirAll(filepath.Dir(cfg.UDSPath), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg.UDSPath, []byte("data"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := New(cfg, discard()).Start(context.Background()); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("regular file at the socket path: %v", err)
	}
}

func TestServerInitNamesBadValues(t *testing.T) {
	p := tunneltest.NewPKI(t)
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"relative socket", func(c *Config) { c.UDSPath = "run/k.sock" }, "relative"},
		{"long socket", func(c *Config) { c.UDSPath = "/" + strings.Repeat("d", 120) }, "longer than"},
		{"bad port", func(c *Config) { c.AgentPort = 70000 }, "70000"},
		{"no CA", func(c *Config) { c.ClusterCACert = "" }, "cluster CA"},
	} {
		cfg := testConfig(t, p)
		tc.mutate(&cfg)
		err := New(cfg, discard()).Init(context.Background())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: want error naming %q, got %v", tc.name, tc.want, err)
		}
	}
}
