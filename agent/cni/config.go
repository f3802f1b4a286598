package cni

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"
	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/vishvananda/netlink"

	"github.com/iks-dev/iks/agent/ipam"
)

// DefaultIPAMDataDir is the IPAM state directory used when the network
// configuration does not name one.
const DefaultIPAMDataDir = "/var/lib/iks/agent/ipam"

// defaultMTU is the pod MTU when none is configured and the host has no
// default route to derive one from.
const defaultMTU = 1500

// NetConf is the plugin's network configuration, read from stdin.
type NetConf struct {
	types.PluginConf
	// MTU of the pod interface and its host peer; 0 means the MTU of the
	// host interface carrying the default route, or 1500 without one.
	MTU int `json:"mtu,omitempty"`
	// IPAM configures the built-in address allocator. It shadows the
	// standard "ipam" field: this plugin does not delegate to an IPAM plugin.
	IPAM IPAMConf `json:"ipam"`
	// LogFile, if set, receives the plugin's log (appended, info level).
	// Without it only warnings and errors go to stderr.
	LogFile string `json:"logFile,omitempty"`
}

// IPAMConf configures the node-local allocator.
type IPAMConf struct {
	// Blocks, if set, are fixed address blocks of the pod range. Without
	// them addresses come from the block set the node's agent keeps in the
	// store (IPAMBlocks it claimed), and AgentSocket is asked for another
	// block when that set is full.
	Blocks []netip.Prefix `json:"blocks,omitempty"`
	// AgentSocket is the agent's unix socket (ipam.RequestBlock).
	AgentSocket string `json:"agentSocket,omitempty"`
	// DataDir holds the allocation state; DefaultIPAMDataDir if empty.
	DataDir string `json:"dataDir,omitempty"`
}

// LoadNetConf parses and validates the network configuration. A prevResult,
// if present, is parsed into PluginConf.PrevResult.
func LoadNetConf(data []byte) (*NetConf, error) {
	conf := &NetConf{}
	if err := json.Unmarshal(data, conf); err != nil {
		return nil, fmt.Errorf("parse network configuration: %w", err)
	}
	if err := version.ParsePrevResult(&conf.PluginConf); err != nil {
		return nil, fmt.Errorf("parse prevResult of network %q: %w", conf.Name, err)
	}
	if conf.IPAM.DataDir == "" {
		conf.IPAM.DataDir = DefaultIPAMDataDir
	}
	if err := conf.validate(); err != nil {
		return nil, fmt.Errorf("network configuration %q: %w", conf.Name, err)
	}
	return conf, nil
}

func (c *NetConf) validate() error {
	if c.MTU != 0 && (c.MTU < 576 || c.MTU > 65535) {
		return fmt.Errorf("mtu %d is out of range; use 0 (derive from the host) or 576..65535", c.MTU)
	}
	switch {
	case len(c.IPAM.Blocks) == 0 && c.IPAM.AgentSocket == "":
		return errors.New("ipam: set ipam.agentSocket (the iks agent's socket, which hands out the node's blocks) or fixed ipam.blocks")
	case len(c.IPAM.Blocks) > 0:
		if err := ipam.ValidateBlocks(c.IPAM.Blocks); err != nil {
			return fmt.Errorf("ipam.blocks: %w", err)
		}
	}
	if c.IPAM.AgentSocket != "" && !filepath.IsAbs(c.IPAM.AgentSocket) {
		return fmt.Errorf("ipam.agentSocket %q is not an absolute path; use e.g. /var/lib/iks/run/agent.sock", c.IPAM.AgentSocket)
	}
	if !filepath.IsAbs(c.IPAM.DataDir) {
		return fmt.Errorf("ipam.dataDir %q is not an absolute path; use e.g. %s", c.IPAM.DataDir, DefaultIPAMDataDir)
	}
	if c.LogFile != "" && !filepath.IsAbs(c.LogFile) {
		return fmt.Errorf("logFile %q is not an absolute path; use e.g. /var/log/iks/cni.log", c.LogFile)
	}
	return nil
}

// logger returns the logger for one plugin invocation and the function that
// closes its log file. If the log file cannot be opened, logs go to stderr.
func (c *NetConf) logger(cmd string, args *skel.CmdArgs) (*slog.Logger, func()) {
	var w io.Writer = os.Stderr
	level := slog.LevelWarn
	closeFn := func() {}
	var openErr error
	if c.LogFile != "" {
		if err := os.MkdirAll(filepath.Dir(c.LogFile), 0o755); err != nil {
			openErr = err
		} else if f, err := os.OpenFile(c.LogFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644); err != nil {
			openErr = err
		} else {
			w, level, closeFn = f, slog.LevelInfo, func() { _ = f.Close() }
		}
	}
	log := slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})).With(
		"component", "cni", "cmd", cmd, "containerID", args.ContainerID, "netns", args.Netns, "ifName", args.IfName)
	if openErr != nil {
		log.Warn("cannot open the configured log file; logging to stderr", "logFile", c.LogFile, "err", openErr)
	}
	return log, closeFn
}

// podMTU returns the configured MTU or derives it from the interface of the
// default route in the current network namespace.
func (c *NetConf) podMTU() (int, error) {
	if c.MTU != 0 {
		return c.MTU, nil
	}
	routes, err := netlinksafe.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return 0, fmt.Errorf("list host routes to derive the pod MTU (set \"mtu\" in the network configuration to skip this): %w", err)
	}
	for _, r := range routes { // main table only
		if !isDefaultRoute(r) {
			continue
		}
		idx := r.LinkIndex
		if idx == 0 && len(r.MultiPath) > 0 {
			idx = r.MultiPath[0].LinkIndex
		}
		if idx == 0 {
			continue
		}
		link, err := netlink.LinkByIndex(idx)
		if err != nil {
			var nf netlink.LinkNotFoundError
			if errors.As(err, &nf) {
				continue
			}
			return 0, fmt.Errorf("look up default-route interface %d to derive the pod MTU: %w", idx, err)
		}
		return link.Attrs().MTU, nil
	}
	return defaultMTU, nil
}

func isDefaultRoute(r netlink.Route) bool {
	if r.Dst == nil {
		return true
	}
	ones, _ := r.Dst.Mask.Size()
	return ones == 0
}
