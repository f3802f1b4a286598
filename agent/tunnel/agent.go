// Package tunnel runs the node end of the master-to-worker tunnel: the
// Konnectivity agent (sigs.k8s.io/apiserver-network-proxy), in process.
//
// The agent dials out to the iks server's Konnectivity port with the
// kubelet's client certificate and keeps a gRPC stream open; the server
// sends kube-apiserver's connections to this node (kubelet, pods) down that
// stream and the agent opens them locally. Each apiserver egresses only
// through its own server's tunnel end, so with several servers the agent
// keeps one tunnel to each (Config.Servers), following the list. It registers under the node's
// name and IP (agent identifiers "ipv4=<ip>&host=<name>"), so the server
// picks this agent for traffic to this node. It reconnects with backoff
// (SyncInterval growing to SyncIntervalCap) after a server restart or a
// network cut, and reloads the client certificate on every connection, so
// it follows the kubelet's certificate rotation.
//
// The upstream command (cmd/agent/app) is not used: its Agent.Run always
// starts health and admin HTTP listeners (health on every interface) and
// loads the client certificate once. This package drives the library
// (pkg/agent.ClientSet) directly and opens no listener.
package tunnel

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/iks-dev/iks/internal/component"
)

// Defaults.
const (
	DefaultServerPort      = 8132
	DefaultSyncInterval    = time.Second
	DefaultSyncIntervalCap = 10 * time.Second
	// xfrChannelSize is the per-connection buffer (the upstream default).
	xfrChannelSize = 150
)

// Config configures the agent. Paths are files.
type Config struct {
	// ServerHost is the iks server's address as its certificate names it.
	ServerHost string
	// Servers, when set, returns the other servers (hosts, or host:port)
	// to keep a tunnel to besides ServerHost; it is read every few
	// seconds and tunnels follow its changes. Every apiserver reaches
	// the nodes only through its own server's tunnel end.
	Servers func() []string
	// ServerPort defaults to DefaultServerPort.
	ServerPort int
	// CACert is the cluster CA, which signed the server's certificate.
	CACert string
	// ClientCert and ClientKey are the kubelet's client certificate and
	// key (CN system:node:<NodeName>); they may be one combined PEM file
	// (kubelet-client-current.pem). They may appear only after kubelet TLS
	// bootstrap: the agent waits for them.
	ClientCert, ClientKey string
	NodeName              string
	NodeIP                netip.Addr
	// SyncInterval is the first reconnect delay; it grows 1.5x per failed
	// attempt up to SyncIntervalCap. Defaults 1s and 10s.
	SyncInterval, SyncIntervalCap time.Duration
}

func (c Config) withDefaults() Config {
	if c.ServerPort == 0 {
		c.ServerPort = DefaultServerPort
	}
	if c.SyncInterval == 0 {
		c.SyncInterval = DefaultSyncInterval
	}
	if c.SyncIntervalCap == 0 {
		c.SyncIntervalCap = DefaultSyncIntervalCap
	}
	return c
}

// ServerAddress is the host:port the agent dials.
func (c Config) ServerAddress() string {
	return net.JoinHostPort(c.ServerHost, strconv.Itoa(c.withDefaults().ServerPort))
}

// AgentIdentifiers returns the identifiers the agent registers with:
// "ipv4=<nodeIP>&host=<nodeName>" ("ipv6=" for an IPv6 node IP).
func AgentIdentifiers(nodeName string, nodeIP netip.Addr) string {
	kind := "ipv4"
	if nodeIP.Unmap().Is6() {
		kind = "ipv6"
	}
	return kind + "=" + url.QueryEscape(nodeIP.Unmap().String()) + "&host=" + url.QueryEscape(nodeName)
}

// Agent is the component.
type Agent struct {
	cfg    Config
	log    *slog.Logger
	runner component.Runner

	mu    sync.Mutex
	links map[string]*link // by server address
}

// New returns the component.
func New(cfg Config, log *slog.Logger) *Agent {
	cfg = cfg.withDefaults()
	log = log.With("component", "konnectivity-agent")
	return &Agent{cfg: cfg, log: log}
}

// Name implements component.Component.
func (a *Agent) Name() string { return "konnectivity-agent" }

// Init validates the configuration.
func (a *Agent) Init(context.Context) error {
	c := a.cfg
	switch {
	case c.ServerHost == "":
		return errors.New("konnectivity agent: no server host: set the iks server's address")
	case c.ServerPort < 1 || c.ServerPort > 65535:
		return fmt.Errorf("konnectivity server port %d is out of range: use 1-65535 (default %d)", c.ServerPort, DefaultServerPort)
	case c.NodeName == "":
		return errors.New("konnectivity agent: no node name: set the name the node registers with")
	case !c.NodeIP.IsValid():
		return fmt.Errorf("konnectivity agent of node %s: no node IP: set the node's InternalIP", c.NodeName)
	case c.CACert == "" || c.ClientCert == "" || c.ClientKey == "":
		return fmt.Errorf("konnectivity agent of node %s: CA %q, client certificate %q and key %q must all be set", c.NodeName, c.CACert, c.ClientCert, c.ClientKey)
	case c.SyncInterval < 0 || c.SyncIntervalCap < c.SyncInterval:
		return fmt.Errorf("konnectivity agent sync interval %s and cap %s: the interval must be positive and not above the cap", c.SyncInterval, c.SyncIntervalCap)
	}
	return nil
}

// Start runs the agent in the background and returns at once: it waits for
// the client certificate, then connects and keeps reconnecting. The node
// does not depend on the tunnel to start; see Connected and WaitConnected.
func (a *Agent) Start(ctx context.Context) error {
	a.runner.Go(ctx, a.run)
	return nil
}

func (a *Agent) run(ctx context.Context) error {
	tlsConfig := a.waitForCredentials(ctx)
	if tlsConfig == nil {
		return nil // stopped while waiting
	}
	t := time.NewTicker(serversRefresh)
	defer t.Stop()
	for {
		a.follow(tlsConfig)
		select {
		case <-ctx.Done():
			a.mu.Lock()
			var all []*link
			for _, l := range a.links {
				all = append(all, l)
			}
			a.links = nil
			a.mu.Unlock()
			closeAll(all)
			return nil
		case <-t.C:
		}
	}
}

// follow opens links to the servers that have none and closes those to
// servers no longer listed.
func (a *Agent) follow(tlsConfig *tls.Config) {
	want := a.cfg.serverAddresses()
	a.mu.Lock()
	if a.links == nil {
		a.links = map[string]*link{}
	}
	var gone []*link
	for addr, l := range a.links {
		if !slices.Contains(want, addr) {
			gone = append(gone, l)
			delete(a.links, addr)
		}
	}
	var added []string
	for _, addr := range want {
		if a.links[addr] == nil {
			a.links[addr] = a.connect(addr, tlsConfig)
			added = append(added, addr)
		}
	}
	a.mu.Unlock()
	for _, l := range gone {
		a.log.Info("closing the tunnel to a server no longer listed", "server", l.addr)
	}
	if len(gone) > 0 {
		go closeAll(gone)
	}
	if len(added) > 0 && len(want) > 1 {
		a.log.Info("tunnels follow the server list", "servers", want)
	}
}

// ConnectedServers returns the servers the tunnel is up to.
func (a *Agent) ConnectedServers() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for addr, l := range a.links {
		if l.cs.HealthyClientsCount() > 0 {
			out = append(out, addr)
		}
	}
	slices.Sort(out)
	return out
}

// Connected reports whether the tunnel to at least one server is up.
func (a *Agent) Connected() bool { return len(a.ConnectedServers()) > 0 }

// lastErrors are the latest failures of the links that are down.
func (a *Agent) lastErrors() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for addr, l := range a.links {
		if err := l.state.err(); err != nil {
			out = append(out, addr+": "+err.Error())
		}
	}
	slices.Sort(out)
	return out
}

// WaitConnected blocks until the tunnel is up or ctx ends.
func (a *Agent) WaitConnected(ctx context.Context) error {
	for !a.Connected() {
		if err := a.runner.Exited(); err != nil {
			return fmt.Errorf("konnectivity agent exited: %w", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("tunnel to the konnectivity servers %v not connected (last errors: %v): %w", a.cfg.serverAddresses(), a.lastErrors(), ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

// Healthy reports an agent that stopped running. A tunnel that is down is
// not unhealthy: the agent keeps reconnecting (see Connected).
func (a *Agent) Healthy() error { return a.runner.Exited() }

// Stop disconnects the agent. It is idempotent.
func (a *Agent) Stop(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return a.runner.Stop(ctx)
}
