// Package routing is the node's routing agent, in the role Calico's BIRD
// and Felix play on an IKS worker: an embedded BGP speaker (gobgp) keeps a
// full iBGP mesh with every other node and advertises the node's pod
// blocks; the best paths it learns are programmed into the kernel.
//
// Encapsulation is cross-subnet, as on IKS: a block whose next hop is on
// the node's own L2 subnet is routed natively
//
//	172.30.7.0/26 via 10.0.0.12 dev eth0 proto 81
//
// and any other block goes through the tunnel. IKS uses IP-in-IP; where
// the kernel has no ipip driver VXLAN is used instead (device iks.vxlan,
// VNI 4096, UDP 4789), with static FDB and neighbour entries derived from
// the peers' node IPs so no extra exchange is needed:
//
//	172.30.9.0/26 via 172.30.9.0 dev iks.vxlan onlink proto 81
//
// Every route the agent owns carries RouteProtocol (proto 81). The package
// also maintains the NAT-outgoing rule (EnsureNATOutgoing).
package routing

import (
	"fmt"
	"net/netip"
	"time"
)

// Encapsulation modes of Config.Encap, as Calico names them.
const (
	EncapCrossSubnet = "CrossSubnet"
	EncapAlways      = "Always"
	EncapNever       = "Never"
)

// Defaults of Config.
const (
	DefaultASN            = 64512
	DefaultPort           = 179
	DefaultResyncInterval = 30 * time.Second
	DefaultStaleGrace     = 60 * time.Second
	// DefaultGracefulRestartTime is the restart time advertised to peers
	// (RFC 4724), Calico's default. The routing package itself treats 0 as
	// "graceful restart off"; the agent flags default to this value.
	DefaultGracefulRestartTime = 120 * time.Second
	// MaxGracefulRestartTime is the largest restart time the capability's
	// 12-bit field can carry.
	MaxGracefulRestartTime = 4095 * time.Second
)

// Config of a Router.
type Config struct {
	// NodeName is this node's name, used in logs.
	NodeName string
	// NodeIP is the node's address: BGP listens on it, it is the next
	// hop of the advertised blocks and the VXLAN tunnel's local address.
	NodeIP netip.Addr
	// NodeSubnet is the L2 subnet of the interface holding NodeIP; peers
	// inside it are reached natively in CrossSubnet mode.
	NodeSubnet netip.Prefix
	// ASN is the cluster's private AS (DefaultASN when 0).
	ASN uint32
	// Port is the BGP port every node listens on and dials (DefaultPort
	// when 0).
	Port int
	// LocalBlocks returns the node's current pod blocks; it is called on
	// every resync, so blocks assigned later are picked up. See
	// StaticBlocks.
	LocalBlocks func() []netip.Prefix
	// Encap is EncapCrossSubnet (default), EncapAlways or EncapNever.
	Encap string
	// Peers lists the other nodes; this node's own entry is ignored.
	Peers PeerSource
	// ResyncInterval bounds how long a missed event can leave the kernel
	// out of date (DefaultResyncInterval when 0).
	ResyncInterval time.Duration
	// StaleGrace is how long proto-81 routes left by a previous run are
	// kept while sessions come up; once every peer has been established
	// (or the grace has passed) routes not learned again are removed
	// (DefaultStaleGrace when 0).
	StaleGrace time.Duration
	// GracefulRestartTime is the restart time this node advertises: its
	// peers keep its routes (marked stale) that long while it restarts.
	// 0 turns graceful restart off. Whole seconds, at most
	// MaxGracefulRestartTime.
	GracefulRestartTime time.Duration
}

// StaticBlocks returns a LocalBlocks function for a fixed set of blocks.
func StaticBlocks(blocks ...netip.Prefix) func() []netip.Prefix {
	b := append([]netip.Prefix(nil), blocks...)
	return func() []netip.Prefix { return b }
}

// withDefaults returns cfg with defaults filled in, or an error naming the
// first invalid value.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.ASN == 0 {
		cfg.ASN = DefaultASN
	}
	if cfg.Port == 0 {
		cfg.Port = DefaultPort
	}
	if cfg.Encap == "" {
		cfg.Encap = EncapCrossSubnet
	}
	if cfg.ResyncInterval <= 0 {
		cfg.ResyncInterval = DefaultResyncInterval
	}
	if cfg.StaleGrace <= 0 {
		cfg.StaleGrace = DefaultStaleGrace
	}
	if cfg.LocalBlocks == nil {
		cfg.LocalBlocks = StaticBlocks()
	}
	if cfg.Peers == nil {
		cfg.Peers = NewStaticPeers()
	}
	switch {
	case !cfg.NodeIP.IsValid() || !cfg.NodeIP.Is4():
		return cfg, fmt.Errorf("routing: node IP %q is not an IPv4 address; set the node's IPv4 address (--node-ip)", cfg.NodeIP)
	case !cfg.NodeSubnet.IsValid() || !cfg.NodeSubnet.Contains(cfg.NodeIP):
		return cfg, fmt.Errorf("routing: node subnet %q does not contain node IP %s; pass the prefix of the interface that holds the node IP", cfg.NodeSubnet, cfg.NodeIP)
	case cfg.GracefulRestartTime != 0 && !ValidGracefulRestartTime(cfg.GracefulRestartTime):
		return cfg, fmt.Errorf("routing: graceful restart time %s is invalid; use 0 (off) or whole seconds from 1s to %s (default %s)", cfg.GracefulRestartTime, MaxGracefulRestartTime, DefaultGracefulRestartTime)
	case cfg.Port < 1 || cfg.Port > 65535:
		return cfg, fmt.Errorf("routing: BGP port %d is out of range; use 1-65535 (default %d)", cfg.Port, DefaultPort)
	}
	if err := ValidEncapsulation(cfg.Encap); err != nil {
		return cfg, fmt.Errorf("routing: %w", err)
	}
	cfg.NodeSubnet = cfg.NodeSubnet.Masked()
	return cfg, nil
}

// ValidGracefulRestartTime reports whether d is a usable non-zero
// graceful restart time: whole seconds, 1s to MaxGracefulRestartTime.
func ValidGracefulRestartTime(d time.Duration) bool {
	return d >= time.Second && d <= MaxGracefulRestartTime && d%time.Second == 0
}

// ValidEncapsulation returns an error naming mode unless it is one of
// EncapCrossSubnet, EncapAlways or EncapNever.
func ValidEncapsulation(mode string) error {
	switch mode {
	case EncapCrossSubnet, EncapAlways, EncapNever:
		return nil
	}
	return fmt.Errorf("encapsulation %q is unknown; use %s (default), %s or %s", mode, EncapCrossSubnet, EncapAlways, EncapNever)
}
