package tunnel

import (
	"crypto/tls"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	anpagent "sigs.k8s.io/apiserver-network-proxy/pkg/agent"
)

// serversRefresh is how often the agent compares its tunnels with the
// server list (Config.Servers, an in-memory read).
const serversRefresh = 3 * time.Second

// link is the agent's tunnel to one server: each apiserver reaches the
// nodes only through its own local tunnel server, so an agent keeps one
// link per server.
type link struct {
	addr   string
	cs     *anpagent.ClientSet
	stopCh chan struct{}
	d      *dialer
	state  *tunnelState
}

// connect opens a link to addr (host:port) and returns at once; it
// reconnects on its own until closed.
func (a *Agent) connect(addr string, base *tls.Config) *link {
	host, _, _ := net.SplitHostPort(addr)
	tlsConfig := base.Clone()
	tlsConfig.ServerName = host
	c := a.cfg
	l := &link{addr: addr, stopCh: make(chan struct{}), d: newDialer(), state: newTunnelState(a.log, addr, c)}
	l.cs = (&anpagent.ClientSetConfig{
		Address:          addr,
		AgentID:          c.NodeName,
		AgentIdentifiers: AgentIdentifiers(c.NodeName, c.NodeIP),
		SyncInterval:     c.SyncInterval,
		ProbeInterval:    time.Second,
		SyncIntervalCap:  c.SyncIntervalCap,
		DialOptions:      dialOptions(tlsConfig, l.d, l.state),
		XfrChannelSize:   xfrChannelSize,
	}).NewAgentClientSet(make(chan struct{}), l.stopCh)
	l.cs.SetServerCounter(anpagent.NewResponseBasedCounter(l.cs))
	a.log.Info("connecting the tunnel to the konnectivity server", "server", addr, "identifiers", AgentIdentifiers(c.NodeName, c.NodeIP))
	l.cs.Serve()
	return l
}

// close stops the link: no new connections, the current ones cut; the
// client set then drops its clients. Its sync goroutine cannot be
// joined: it returns after its current backoff sleep (at most
// SyncIntervalCap).
func (l *link) close() {
	l.state.stop()
	close(l.stopCh)
	l.d.closeAll()
	deadline := time.Now().Add(2 * time.Second)
	for l.cs.ClientsCount() > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
}

// closeAll closes links in parallel.
func closeAll(links []*link) {
	var wg sync.WaitGroup
	for _, l := range links {
		wg.Add(1)
		go func() { defer wg.Done(); l.close() }()
	}
	wg.Wait()
}

// serverAddresses are the host:port the agent keeps links to: ServerHost
// and every server Config.Servers names (a host alone gets ServerPort),
// sorted and without duplicates.
func (c Config) serverAddresses() []string {
	out := []string{c.ServerAddress()}
	if c.Servers != nil {
		port := strconv.Itoa(c.withDefaults().ServerPort)
		for _, s := range c.Servers() {
			if s == "" {
				continue
			}
			if _, _, err := net.SplitHostPort(s); err != nil {
				s = net.JoinHostPort(s, port)
			}
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
