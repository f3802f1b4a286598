// Package podnet is the node-local part of the pod network at start-up:
// it waits for the node's address blocks, writes the CNI configuration
// that points containerd at the iks plugin, and enables forwarding.
package podnet

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/iks-dev/iks/agent/cni"
	"github.com/iks-dev/iks/internal/kubeutil"
)

// Config of the pod network on this node.
type Config struct {
	NodeName   string
	Kubeconfig string // the kubelet's identity: may read its own Node
	ConfDir    string // containerd's CNI conf dir
	IPAMDir    string
	LogFile    string
	// MTU returns the pod interface MTU (the uplink's minus the tunnel
	// overhead); nil derives it from the default-route interface.
	MTU func() (int, error)
}

// PodNet is the component.
type PodNet struct {
	cfg    Config
	log    *slog.Logger
	client kubernetes.Interface
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

// Start implements component.Component.
func (p *PodNet) Start(context.Context) error { return nil }

// Ready waits for the node's pod CIDR blocks and writes the CNI config.
func (p *PodNet) Ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	// A joining node's kubeconfig appears once kubelet's TLS bootstrap is done.
	cs, err := kubeutil.WaitClientset(ctx, p.cfg.Kubeconfig)
	if err != nil {
		return err
	}
	p.client = cs
	var blocks []netip.Prefix
	err = kubeutil.Poll(ctx, 200*time.Millisecond, func(ctx context.Context) (bool, error) {
		n, err := p.client.CoreV1().Nodes().Get(ctx, p.cfg.NodeName, metav1.GetOptions{})
		if err != nil {
			return false, nil // not registered yet
		}
		blocks = NodeBlocks(n)
		return len(blocks) > 0, nil
	})
	if err != nil {
		return fmt.Errorf("node %s got no pod address block: %w", p.cfg.NodeName, err)
	}
	mtu := 0
	if p.cfg.MTU != nil {
		if mtu, err = p.cfg.MTU(); err != nil {
			return fmt.Errorf("pod MTU: %w", err)
		}
	}
	path := filepath.Join(p.cfg.ConfDir, "10-iks.conflist")
	if err := cni.WriteConflist(path, cni.ConflistConfig{MTU: mtu, Blocks: blocks, DataDir: p.cfg.IPAMDir, LogFile: p.cfg.LogFile}); err != nil {
		return fmt.Errorf("write CNI config: %w", err)
	}
	p.log.Info("pod network configured", "blocks", fmt.Sprint(blocks), "mtu", mtu)
	return nil
}

// Stop implements component.Component; the network stays up for pods.
func (p *PodNet) Stop(context.Context) error { return nil }

// NodeBlocks returns the IPv4 pod address blocks assigned to a node.
func NodeBlocks(n *corev1.Node) []netip.Prefix {
	cidrs := n.Spec.PodCIDRs
	if len(cidrs) == 0 && n.Spec.PodCIDR != "" {
		cidrs = []string{n.Spec.PodCIDR}
	}
	var out []netip.Prefix
	for _, c := range cidrs {
		if p, err := netip.ParsePrefix(c); err == nil && p.Addr().Is4() {
			out = append(out, p)
		}
	}
	return out
}
