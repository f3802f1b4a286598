package config

import (
	"fmt"
	"time"

	"github.com/spf13/pflag"
)

// NetworkFlags are the pod-network flags `iks server` (for its local
// node) and `iks agent` share. Every node takes them: the encapsulation
// mode is a per-node choice in iks (a node accepts native and tunnelled
// traffic alike, so mixed modes still route), like --cluster-cidr.
type NetworkFlags struct {
	GracefulRestartTime time.Duration
	Encapsulation       string
	Topology            TopologyFlags
}

// AddFlags registers the network flags on fs.
func (f *NetworkFlags) AddFlags(fs *pflag.FlagSet) {
	fs.DurationVar(&f.GracefulRestartTime, "bgp-graceful-restart-time", DefaultGracefulRestartTime,
		"how long BGP peers keep this node's routes while its agent restarts (RFC 4724; 0 turns graceful restart off)")
	fs.StringVar(&f.Encapsulation, "encapsulation", DefaultEncapsulation,
		"pod traffic between nodes: CrossSubnet (tunnel only across subnets), Always or Never; IP-in-IP where the kernel has it, else VXLAN")
	f.Topology.AddFlags(fs)
}

// validate checks the values, reporting problems through bad.
func (f *NetworkFlags) validate(bad func(string, ...any)) {
	gr := f.GracefulRestartTime
	if gr != 0 && (gr < time.Second || gr > 4095*time.Second || gr%time.Second != 0) {
		bad("--bgp-graceful-restart-time %s is invalid: use 0 (off) or whole seconds from 1s to 4095s (default %s)", gr, DefaultGracefulRestartTime)
	}
	switch f.Encapsulation {
	case "CrossSubnet", "Always", "Never":
	default:
		bad("--encapsulation %q is unknown: use CrossSubnet (default), Always or Never", f.Encapsulation)
	}
}

// String describes the values for logs.
func (f NetworkFlags) String() string {
	return fmt.Sprintf("encapsulation=%s bgp-graceful-restart-time=%s", f.Encapsulation, f.GracefulRestartTime)
}
