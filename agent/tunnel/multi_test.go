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
	"strconv"
	"sync"
	"testing"
	"time"

	servertunnel "github.com/iks-dev/iks/server/tunnel"
	"github.com/iks-dev/iks/server/tunnel/tunneltest"
)

// With two servers listed, the agent keeps a tunnel to each, so both
// servers' apiserver ends reach the node; a server dropped from the list
// loses its tunnel.
func TestTunnelToEveryListedServer(t *testing.T) {
	_, log := newLogs(t)
	p := tunneltest.NewPKI(t)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "hello from node-m")
	}))
	defer backend.Close()
	target := backend.Listener.Addr().String()

	var cfgs []servertunnel.Config
	var srvs []*servertunnel.Server
	for i := range 2 {
		c := servertunnel.Config{
			UDSPath:          filepath.Join(t.TempDir(), fmt.Sprintf("konnectivity-%d.sock", i)),
			AgentBindAddress: netip.MustParseAddr("127.0.0.1"),
			AgentPort:        freePort(t),
			ServerCert:       p.ServerCert, ServerKey: p.ServerKey, ClusterCACert: p.CACert,
		}
		cfgs = append(cfgs, c)
		srvs = append(srvs, startServer(t, c, log))
	}
	second := net.JoinHostPort("127.0.0.1", strconv.Itoa(cfgs[1].AgentPort))
	var mu sync.Mutex
	listed := []string{second}
	cert, key := p.NodeClientCert("node-m")
	agent := startAgent(t, Config{
		ServerHost: "127.0.0.1", ServerPort: cfgs[0].AgentPort, CACert: p.CACert, ClientCert: cert, ClientKey: key,
		NodeName: "node-m", NodeIP: netip.MustParseAddr("127.0.0.1"),
		Servers: func() []string { mu.Lock(); defer mu.Unlock(); return listed },
	}, log)
	get := func(i int) func() error {
		return func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			body, err := tunneltest.Get(ctx, cfgs[i].UDSPath, target)
			if err == nil && body != "hello from node-m" {
				err = fmt.Errorf("unexpected body %q", body)
			}
			return err
		}
	}
	eventually(t, 20*time.Second, "GET through the first server's tunnel", get(0))
	eventually(t, 20*time.Second, "GET through the second server's tunnel", get(1))
	if got := agent.ConnectedServers(); len(got) != 2 {
		t.Errorf("connected to %v, want both servers", got)
	}

	mu.Lock()
	listed = nil
	mu.Unlock()
	eventually(t, 15*time.Second, "the dropped server losing the agent", func() error {
		if n := srvs[1].ConnectedAgents(); n != 0 {
			return fmt.Errorf("%d agents still connected", n)
		}
		return nil
	})
	if err := get(0)(); err != nil {
		t.Errorf("the listed server's tunnel after the other was dropped: %v", err)
	}
}
