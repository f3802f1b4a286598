package agent

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/iks-dev/iks/agent/bootstrap"
	"github.com/iks-dev/iks/internal/component"
	"github.com/iks-dev/iks/internal/config"
	"github.com/iks-dev/iks/internal/lock"
	"github.com/iks-dev/iks/internal/nodeclaim"
)

// StopTimeout bounds a graceful stop of the agent.
const StopTimeout = 20 * time.Second

// Run joins the cluster (on first start) and runs the node until ctx ends.
// Nothing but the --with-node-id id is written before the server's CA has
// been verified against the token and the token accepted; nothing but the
// node password before the node name is granted to this machine.
func Run(ctx context.Context, cfg *config.Joining, log *slog.Logger) error {
	t0 := time.Now()
	p := config.Paths{Root: cfg.DataDir}
	l, err := lock.Acquire(p.LockFile())
	if err != nil {
		return err
	}
	defer l.Release()
	if err := config.SaveNodeID(cfg.DataDir, cfg.NewNodeID); err != nil {
		return err
	}

	credDir := filepath.Join(p.AgentDir(), "cred")
	kubeletDir := filepath.Join(p.AgentDir(), "kubelet")
	kubeletCert := filepath.Join(kubeletDir, "pki", "kubelet-client-current.pem")
	creds := Credentials{
		Kubeconfig:          filepath.Join(kubeletDir, "kubeconfig"),
		BootstrapKubeconfig: filepath.Join(credDir, "bootstrap.kubeconfig"),
		ClientCA:            filepath.Join(credDir, "ca.crt"),
		TunnelServer:        cfg.ServerURL.Hostname(),
		TunnelCert:          kubeletCert,
		TunnelKey:           kubeletCert,
	}
	if joined(creds) {
		log.Info("already joined; reusing this node's credentials", "dir", credDir)
		// An older iks wrote the CA 0644; CIS 4.1.7 asks for 0600.
		if err := os.Chmod(creds.ClientCA, 0o600); err != nil {
			return fmt.Errorf("set mode 0600 on %s: %w", creds.ClientCA, err)
		}
	} else {
		tok, err := bootstrap.ParseToken(cfg.Token)
		if err != nil {
			return err
		}
		// The node password proves to the server that the node name is
		// this machine's; it is kept for every later join.
		node := bootstrap.Node{Name: cfg.NodeName, KeyFile: nodeclaim.KeyFile(p.AgentDir())}
		if _, err := bootstrap.Join(ctx, cfg.ServerURL.String(), tok, credDir, node, log); err != nil {
			return err
		}
		log.Info("server verified and token accepted", "server", cfg.ServerURL.String(), "took", time.Since(t0).Round(time.Millisecond).String())
	}
	// Every API client of the node goes through the load balancer, which
	// follows the servers as they come and go.
	lb := newAPILB(cfg.ServerURL, p, log)
	if err := pointAt(lb.URL(), creds.BootstrapKubeconfig, creds.Kubeconfig); err != nil {
		return err
	}
	lb.LearnFrom(creds.Kubeconfig)
	creds.TunnelServers = func() []string { return hosts(lb.Servers()) }
	comps, err := Components(cfg.Agent, creds, log)
	if err != nil {
		return err
	}
	comps = append([]component.Component{lb}, comps...)
	m := component.NewManager(log, comps...)
	if err := m.Init(ctx); err != nil {
		return err
	}
	if err := m.Start(ctx); err != nil {
		return err
	}
	log.Info(fmt.Sprintf("node %s is Ready in %s (joined %s)", cfg.NodeName, time.Since(t0).Round(100*time.Millisecond), cfg.ServerURL.Host))
	return m.Supervise(ctx, 2*time.Second, StopTimeout)
}

// joined reports whether this data dir already holds the node's identity:
// the pinned CA and the kubeconfig kubelet wrote after its TLS bootstrap.
func joined(c Credentials) bool {
	for _, f := range []string{c.ClientCA, c.Kubeconfig} {
		if _, err := os.Stat(f); err != nil {
			return false
		}
	}
	return true
}
