package tunnel

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	servertunnel "github.com/iks-dev/iks/server/tunnel"
	"github.com/iks-dev/iks/server/tunnel/tunneltest"
)

// relay forwards a loopback port to target. cut makes the network
// disappear as both ends see it: open connections go silent (bytes are
// dropped, no FIN or RST passes) and new ones are accepted but never
// forwarded. heal lets new connections through again.
type relay struct {
	ln     net.Listener
	target string

	mu   sync.Mutex
	cut  bool
	live []*relayConn
	held []net.Conn
}

type relayConn struct {
	dead atomic.Bool
	a, b net.Conn
}

func newRelay(t *testing.T, target string) *relay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{ln: ln, target: target}
	go r.serve()
	t.Cleanup(r.close)
	return r
}

func (r *relay) port() int { return r.ln.Addr().(*net.TCPAddr).Port }

func (r *relay) serve() {
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.mu.Lock()
		if r.cut {
			r.held = append(r.held, c)
			r.mu.Unlock()
			continue
		}
		r.mu.Unlock()
		up, err := net.Dial("tcp", r.target)
		if err != nil {
			c.Close()
			continue
		}
		rc := &relayConn{a: c, b: up}
		r.mu.Lock()
		r.live = append(r.live, rc)
		r.mu.Unlock()
		go rc.pipe(c, up)
		go rc.pipe(up, c)
	}
}

func (rc *relayConn) pipe(src, dst net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !rc.dead.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				err = werr
			}
		}
		if err != nil {
			if !rc.dead.Load() { // a cut network passes no close either
				rc.a.Close()
				rc.b.Close()
			}
			return
		}
	}
}

func (r *relay) cutAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cut = true
	for _, rc := range r.live {
		rc.dead.Store(true)
	}
}

func (r *relay) heal() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cut = false
	for _, c := range r.held { // their handshakes have timed out
		c.Close()
	}
	r.held = nil
}

func (r *relay) close() {
	r.ln.Close()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rc := range r.live {
		rc.a.Close()
		rc.b.Close()
	}
	for _, c := range r.held {
		c.Close()
	}
}

// After a network cut the agent notices through keepalive, reconnects once
// the network is back, and the server hands the node's traffic to the new
// stream although it has not noticed the old one is dead.
func TestTunnelRecoversFromANetworkCut(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the agent's keepalive to notice the cut (gRPC's minimum is 10s)")
	}
	oldTime, oldTimeout := keepaliveTime, keepaliveTimeout
	keepaliveTime, keepaliveTimeout = 10*time.Second, time.Second
	defer func() { keepaliveTime, keepaliveTimeout = oldTime, oldTimeout }()

	logs, log := newLogs(t)
	p := tunneltest.NewPKI(t)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "hello from node-a")
	}))
	defer backend.Close()
	srvCfg := servertunnel.Config{
		UDSPath:          filepath.Join(t.TempDir(), "konnectivity-server.sock"),
		AgentBindAddress: netip.MustParseAddr("127.0.0.1"),
		AgentPort:        freePort(t),
		ServerCert:       p.ServerCert, ServerKey: p.ServerKey, ClusterCACert: p.CACert,
	}
	startServer(t, srvCfg, log)
	network := newRelay(t, srvCfg.AgentAddress())
	cert, key := p.NodeClientCert("node-a")
	agent := startAgent(t, Config{
		ServerHost: "127.0.0.1", ServerPort: network.port(), CACert: p.CACert, ClientCert: cert, ClientKey: key,
		NodeName: "node-a", NodeIP: netip.MustParseAddr("127.0.0.1"),
	}, log)
	get := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		body, err := tunneltest.Get(ctx, srvCfg.UDSPath, backend.Listener.Addr().String())
		if err == nil && body != "hello from node-a" {
			err = fmt.Errorf("unexpected body %q", body)
		}
		return err
	}
	eventually(t, 20*time.Second, "GET through the tunnel", get)

	network.cutAll()
	eventually(t, 30*time.Second, "agent noticing the cut", func() error {
		if agent.Connected() {
			return fmt.Errorf("still connected")
		}
		return nil
	})
	network.heal()
	eventually(t, 30*time.Second, "GET through the tunnel after the network is back", get)
	eventually(t, 5*time.Second, "server replacing the dead stream", logged(logs, "closing its previous tunnel connection"))
}
