// Package tunnel runs the server end of the master-to-worker tunnel: the
// Konnectivity proxy server (sigs.k8s.io/apiserver-network-proxy), in
// process, as IKS has done since Kubernetes 1.21.
//
// Workers dial out to the agent port (default 8132) with their kubelet
// client certificate (CN system:node:<name>, signed by the cluster CA) and
// keep a gRPC stream open. kube-apiserver, configured with the egress
// selector file from [WriteEgressSelectorConfig], sends its "cluster"
// traffic (kubelet logs/exec/port-forward, proxy subresources, webhooks and
// aggregated APIs) over a Unix socket to this server, which forwards each
// dial through the agent of the destination node (proxy strategy destHost),
// or through any agent when no node claims the address (default). The
// apiserver therefore needs no route to the nodes.
//
// The upstream command (cmd/server/app) is not used: its Proxy.Run always
// starts admin and health HTTP listeners, changes the process umask while
// creating the socket, and has no readiness signal. This package wires the
// same library pieces (pkg/server.ProxyServer behind two gRPC servers) with
// no extra listeners and no process-wide side effects beyond the
// Prometheus metrics that pkg/server registers at init.
package tunnel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc"

	clientproto "sigs.k8s.io/apiserver-network-proxy/konnectivity-client/proto/client"
	anpserver "sigs.k8s.io/apiserver-network-proxy/pkg/server"
	"sigs.k8s.io/apiserver-network-proxy/pkg/server/proxystrategies"
	agentproto "sigs.k8s.io/apiserver-network-proxy/proto/agent"
)

// DefaultAgentPort is the port workers' agents connect to (Konnectivity's
// conventional port, as in IKS).
const DefaultAgentPort = 8132

// ProxyStrategies route a dial to the agent that registered the destination
// host (node IP or name) first, and to any agent otherwise (service and
// pod IPs).
const ProxyStrategies = "destHost,default"

// Channel size between the frontend (apiserver) and backend (agent) streams:
// the upstream default.
const xfrChannelSize = 10

// Config configures the tunnel server. Paths are files.
type Config struct {
	// UDSPath is the socket kube-apiserver dials, e.g.
	// <data-dir>/run/konnectivity/konnectivity-server.sock. Its directory
	// is created 0700 and the socket is 0600.
	UDSPath string
	// AgentBindAddress is the address agents connect to; the zero value
	// listens on every interface.
	AgentBindAddress netip.Addr
	// AgentPort defaults to DefaultAgentPort.
	AgentPort int
	// ServerCert and ServerKey are presented to agents (the apiserver
	// serving certificate: its SANs must cover the address agents dial).
	ServerCert, ServerKey string
	// ClusterCACert verifies the agents' client certificates.
	ClusterCACert string
	// ServerID names this server to agents; a random UUID by default.
	ServerID string
}

func (c Config) withDefaults() Config {
	if c.AgentPort == 0 {
		c.AgentPort = DefaultAgentPort
	}
	if c.ServerID == "" {
		c.ServerID = uuid.NewString()
	}
	return c
}

// AgentAddress is the host:port the agent listener binds.
func (c Config) AgentAddress() string {
	host := ""
	if c.AgentBindAddress.IsValid() {
		host = c.AgentBindAddress.String()
	}
	return net.JoinHostPort(host, strconv.Itoa(c.withDefaults().AgentPort))
}

// Server is the component.
type Server struct {
	cfg Config
	log *slog.Logger

	mu       sync.Mutex
	proxy    *anpserver.ProxyServer
	frontend *grpc.Server // apiserver side, on the socket
	backend  *grpc.Server // agent side, on TCP with mutual TLS
	wg       sync.WaitGroup
	serveErr error
	stopped  bool
}

// New returns the component.
func New(cfg Config, log *slog.Logger) *Server {
	return &Server{cfg: cfg.withDefaults(), log: log.With("component", "konnectivity-server")}
}

// Name implements component.Component.
func (s *Server) Name() string { return "konnectivity-server" }

// Init validates the configuration and creates the socket's directory.
func (s *Server) Init(context.Context) error {
	c := s.cfg
	if err := validateUDSPath(c.UDSPath); err != nil {
		return err
	}
	if c.AgentPort < 1 || c.AgentPort > 65535 {
		return fmt.Errorf("konnectivity agent port %d is out of range: use 1-65535 (default %d)", c.AgentPort, DefaultAgentPort)
	}
	for _, f := range []struct{ name, path string }{
		{"server certificate", c.ServerCert}, {"server key", c.ServerKey}, {"cluster CA certificate", c.ClusterCACert},
	} {
		if f.path == "" {
			return fmt.Errorf("konnectivity server: no %s configured: set the path of the PEM file", f.name)
		}
	}
	return ensureSocketDir(c.UDSPath)
}

// Start listens on the socket and the agent port and serves both.
func (s *Server) Start(context.Context) error {
	tlsConfig, err := serverTLSConfig(s.cfg.ServerCert, s.cfg.ServerKey, s.cfg.ClusterCACert)
	if err != nil {
		return err
	}
	strategies, err := proxystrategies.ParseProxyStrategies(ProxyStrategies)
	if err != nil {
		return fmt.Errorf("konnectivity proxy strategies %q: %w", ProxyStrategies, err)
	}
	proxy := anpserver.NewProxyServer(s.cfg.ServerID, strategies, 1, &anpserver.AgentTokenAuthenticationOptions{}, xfrChannelSize)

	udsLis, err := listenUnix(s.cfg.UDSPath)
	if err != nil {
		return err
	}
	tcpLis, err := net.Listen("tcp", s.cfg.AgentAddress())
	if err != nil {
		_ = udsLis.Close()
		return fmt.Errorf("konnectivity agent port %s: %w (is another iks server or konnectivity-server running? free the port or set another one)", s.cfg.AgentAddress(), err)
	}

	frontend := grpc.NewServer(grpc.KeepaliveParams(frontendKeepalive))
	clientproto.RegisterProxyServiceServer(frontend, proxy)
	agentLis := newAgentConns(tcpLis, s.log)
	backend := grpc.NewServer(backendOptions(tlsConfig, s.log, agentLis)...)
	agentproto.RegisterAgentServiceServer(backend, proxy)

	s.mu.Lock()
	s.proxy, s.frontend, s.backend, s.stopped = proxy, frontend, backend, false
	s.mu.Unlock()
	s.serve(frontend, udsLis, "socket "+s.cfg.UDSPath)
	s.serve(backend, agentLis, "agent port "+tcpLis.Addr().String())
	s.log.Info("konnectivity server listening", "socket", s.cfg.UDSPath, "agents", tcpLis.Addr().String(), "strategies", ProxyStrategies)
	return nil
}

func (s *Server) serve(g *grpc.Server, lis net.Listener, what string) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := g.Serve(lis); err != nil {
			s.mu.Lock()
			if !s.stopped && s.serveErr == nil {
				s.serveErr = fmt.Errorf("konnectivity server stopped serving its %s: %w", what, err)
			}
			s.mu.Unlock()
		}
	}()
}

// Ready waits until the socket accepts connections.
func (s *Server) Ready(ctx context.Context) error {
	var d net.Dialer
	for {
		if err := s.Healthy(); err != nil {
			return err
		}
		c, err := d.DialContext(ctx, "unix", s.cfg.UDSPath)
		if err == nil {
			return c.Close()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("konnectivity socket %s does not accept connections (last: %v): %w", s.cfg.UDSPath, err, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Healthy reports a server that stopped serving.
func (s *Server) Healthy() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proxy == nil {
		return errors.New("konnectivity server not started")
	}
	return s.serveErr
}

// ConnectedAgents is the number of distinct agents (nodes) connected now.
func (s *Server) ConnectedAgents() int {
	s.mu.Lock()
	proxy := s.proxy
	s.mu.Unlock()
	if proxy == nil {
		return 0
	}
	for _, bm := range proxy.BackendManagers {
		if d, ok := bm.(*anpserver.DefaultBackendManager); ok {
			return d.NumBackends()
		}
	}
	return 0
}

// gracefulStopWait bounds how long Stop lets open apiserver tunnels finish.
const gracefulStopWait = 2 * time.Second

// Stop closes the agent port at once (agents reconnect to the next
// server), lets open apiserver tunnels finish for a moment, then closes
// the socket. It is idempotent.
func (s *Server) Stop(ctx context.Context) error {
	s.mu.Lock()
	frontend, backend := s.frontend, s.backend
	s.frontend, s.backend, s.stopped = nil, nil, true
	s.mu.Unlock()
	if frontend == nil {
		return nil
	}
	backend.Stop()
	ctx, cancel := context.WithTimeout(ctx, gracefulStopWait)
	defer cancel()
	graceful := make(chan struct{})
	go func() { frontend.GracefulStop(); close(graceful) }()
	select {
	case <-graceful:
	case <-ctx.Done():
		frontend.Stop()
		<-graceful
	}
	s.wg.Wait()
	return nil
}
