// Package podnet is the node-local part of the pod network at start-up:
// it writes the CNI configuration that points containerd at the iks
// plugin (whose addresses come from the node's IPAM blocks, see
// agent/blockipam) and enables forwarding.
package podnet

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/iks-dev/iks/agent/cni"
)

// Config of the pod network on this node.
type Config struct {
	ConfDir string // containerd's CNI conf dir
	IPAMDir string
	// AgentSocket is where the CNI plugin asks the agent for another
	// address block.
	AgentSocket string
	LogFile     string
	// MTU returns the pod interface MTU (the uplink's minus the tunnel
	// overhead); nil derives it from the default-route interface.
	MTU func() (int, error)
}

// PodNet is the component.
type PodNet struct {
	cfg Config
	log *slog.Logger
}

// New returns the component.
func New(cfg Config, log *slog.Logger) *PodNet {
	return &PodNet{cfg: cfg, log: log.With("component", "podnet")}
}

// Name implements component.Component.
func (p *PodNet) Name() string { return "pod-network" }

// Init enables IPv4 forwarding, which routing pods needs.
func (p *PodNet) Init(context.Context) error {
	if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644); err != nil {
		return fmt.Errorf("enable IPv4 forwarding: %w", err)
	}
	return os.MkdirAll(p.cfg.ConfDir, 0o755)
}

// Start writes the CNI config; start it once the node has address blocks.
func (p *PodNet) Start(context.Context) error {
	mtu := 0
	if p.cfg.MTU != nil {
		var err error
		if mtu, err = p.cfg.MTU(); err != nil {
			return fmt.Errorf("pod MTU: %w", err)
		}
	}
	path := filepath.Join(p.cfg.ConfDir, "10-iks.conflist")
	if err := cni.WriteConflist(path, cni.ConflistConfig{MTU: mtu, DataDir: p.cfg.IPAMDir, AgentSocket: p.cfg.AgentSocket, LogFile: p.cfg.LogFile}); err != nil {
		return fmt.Errorf("write CNI config: %w", err)
	}
	p.log.Info("pod network configured", "conflist", path, "mtu", mtu)
	return nil
}

// Stop implements component.Component; the network stays up for pods.
func (p *PodNet) Stop(context.Context) error { return nil }
