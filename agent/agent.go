// Package agent assembles the node components: the carried binaries,
// containerd, kubelet, the pod network and kube-proxy. `iks server` runs the same
// agent for its local node; `iks agent` (on workers) will too.
package agent

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/iks-dev/iks/agent/blockipam"
	"github.com/iks-dev/iks/agent/cni"
	"github.com/iks-dev/iks/agent/containerd"
	"github.com/iks-dev/iks/agent/kubelet"
	"github.com/iks-dev/iks/agent/lbspeaker"
	"github.com/iks-dev/iks/agent/netpol"
	"github.com/iks-dev/iks/agent/podnet"
	"github.com/iks-dev/iks/agent/proxy"
	"github.com/iks-dev/iks/agent/routing"
	"github.com/iks-dev/iks/agent/tunnel"
	"github.com/iks-dev/iks/agent/vpnroute"
	"github.com/iks-dev/iks/embedded"
	"github.com/iks-dev/iks/internal/component"
	"github.com/iks-dev/iks/internal/config"
	"github.com/iks-dev/iks/internal/kubeclients"
	"github.com/iks-dev/iks/internal/kubeutil"
)

// Credentials the agent runs with (files).
type Credentials struct {
	Kubeconfig string // kubelet client identity system:node:<name>
	// BootstrapKubeconfig (join token) makes kubelet obtain Kubeconfig by
	// TLS bootstrap; ServingCert/Key then come from a CSR too.
	BootstrapKubeconfig string
	ClientCA            string // the cluster CA: verifies the apiserver and the tunnel server
	ServingCert         string
	ServingKey          string
	// TunnelServer is the host the konnectivity agent dials (the server);
	// TunnelCert/Key is its client identity, the kubelet client
	// certificate (one PEM file after TLS bootstrap).
	TunnelServer          string
	TunnelCert, TunnelKey string
	// TunnelServers, when set, lists the other servers' hosts: the agent
	// keeps a tunnel to each, so every apiserver reaches the node.
	TunnelServers func() []string
}

// Components returns the agent's components in start order.
func Components(cfg config.Agent, creds Credentials, log *slog.Logger) ([]component.Component, error) {
	p := config.Paths{Root: cfg.DataDir}
	systemd := containerd.UseSystemdCgroup()
	cniConfDir := filepath.Join(p.AgentDir(), "etc", "cni", "net.d")
	ctrd := containerd.New(containerd.Config{
		Root:                filepath.Join(p.AgentDir(), "containerd"),
		State:               filepath.Join(p.RunDir(), "containerd", "state"),
		Socket:              p.ContainerdSocket(),
		BinDir:              p.BinDir(),
		CNIConfDir:          cniConfDir,
		ImagesDir:           p.ImagesDir(),
		Exe:                 filepath.Join(p.BinDir(), embedded.Containerd),
		SystemdCgroup:       systemd,
		RestrictOOMScoreAdj: containerd.NeedsRestrictOOMScoreAdj(),
		Debug:               cfg.Debug,
	}, log)
	// The pause image and the add-on images (CoreDNS, ALB), imported and pinned
	// on every node: air-gapped, nothing is pulled.
	ctrd.Embedded = func() ([]containerd.EmbeddedImage, error) {
		m, err := embedded.Manifest()
		if err != nil {
			return nil, err
		}
		var out []containerd.EmbeddedImage
		for _, archive := range []string{embedded.PauseArchive, embedded.CoreDNSArchive, embedded.ALBArchive, embedded.StrongSwanArchive} {
			a, ok := m[archive]
			if !ok {
				return nil, fmt.Errorf("embedded image %s missing from the manifest: build iks with `make`", archive)
			}
			out = append(out, containerd.EmbeddedImage{Archive: archive, Image: a.Image, SHA256: a.SHA256,
				Data: func() ([]byte, error) { return embedded.Image(archive) }})
		}
		return out, nil
	}
	kl := kubelet.New(kubelet.Config{
		NodeName: cfg.NodeName, NodeIP: cfg.NodeIP, NodeLabels: cfg.NodeLabels, ExternalAddresses: cfg.PublicIP.IsValid(),
		RootDir:    filepath.Join(p.AgentDir(), "kubelet"),
		Kubeconfig: creds.Kubeconfig, BootstrapKubeconfig: creds.BootstrapKubeconfig, ClientCA: creds.ClientCA,
		ServingCert: creds.ServingCert, ServingKey: creds.ServingKey,
		RuntimeSocket: p.ContainerdSocket(), CgroupRoot: cfg.CgroupRoot, SystemdCgroup: systemd,
		ClusterDomain: cfg.ClusterDomain, ClusterDNS: cfg.ClusterDNS(), ExtraArgs: cfg.KubeletArgs,
		ArgsDir: p.ArgsDir(),
	}, log)
	ipamDir, socket := filepath.Join(p.AgentDir(), "ipam"), filepath.Join(p.RunDir(), "agent.sock")
	blocks := blockipam.New(blockipam.Config{NodeName: cfg.NodeName, Kubeconfig: creds.Kubeconfig, StoreDir: ipamDir,
		Socket: socket, CacheFile: filepath.Join(p.AgentDir(), "cluster-network.json"),
		ClusterCIDR: cfg.ClusterCIDR, ServiceCIDR: cfg.ServiceCIDR, ClusterDomain: cfg.ClusterDomain}, log)
	pn := podnet.New(podnet.Config{ConfDir: cniConfDir, IPAMDir: ipamDir, AgentSocket: socket,
		MTU:     func() (int, error) { return routing.PodMTU(cfg.NodeIP, cfg.Encapsulation) },
		LogFile: filepath.Join(p.AgentDir(), "cni.log")}, log)
	prx := proxy.New(proxy.Config{NodeName: cfg.NodeName, ClusterCIDR: cfg.ClusterCIDR, Kubeconfig: creds.Kubeconfig,
		Mode: cfg.ProxyMode, Dir: filepath.Join(p.AgentDir(), "kube-proxy"), ArgsDir: p.ArgsDir()}, log)
	prxBG := component.InBackground(prx)
	// One set of clients and shared informers for the agent's own
	// components (the kubelet's identity); stopped after all of them.
	clients := kubeclients.New(creds.Kubeconfig)
	// A joining node stages the carried binaries in its Start (below);
	// the server's node in Init.
	joining := creds.BootstrapKubeconfig != ""
	binaries := &component.Func{ID: "binaries", InitFn: func(context.Context) error {
		if err := ensureCgroupRoot(cfg.CgroupRoot); err != nil {
			return err
		}
		if joining {
			return nil
		}
		return stage(p.BinDir())
	}}
	apiClients := &component.Func{ID: "api-clients", StopFn: func(context.Context) error { clients.Shutdown(); return nil }}
	cs := []component.Component{apiClients, binaries, ctrd, kl}
	if joining {
		// A joining node's kubelet client certificate (TLS bootstrap: a
		// CSR and the server's approval) is requested while the carried
		// binaries are staged and containerd starts, not after them by
		// the kubelet. (The server's own node has its certificates, and
		// starts containerd beside the control plane, before any other
		// Start: it stages in Init.)
		binaries.StartFn = func(context.Context) error { return stage(p.BinDir()) }
		cert := component.InBackground(&component.Func{ID: "kubelet-client-cert", StartFn: kl.ClientCert})
		cs = []component.Component{apiClients, cert, binaries, ctrd, &component.Await{B: cert}, kl}
	}
	return append(cs,
		// kube-proxy needs neither the pod network nor the node's blocks:
		// it starts beside them and is awaited where it used to start.
		prxBG, blocks, pn,
		routing.NewComponent(routing.ComponentConfig{
			Router: routing.Config{NodeName: cfg.NodeName, NodeIP: cfg.NodeIP,
				GracefulRestartTime: cfg.GracefulRestartTime, Encap: cfg.Encapsulation},
			Clients: clients, Blocks: blocks, StatusSocket: p.RoutingSocket(),
			Topology: routing.Topology{NodeIP: cfg.NodeIP, PublicIP: cfg.PublicIP, Zone: cfg.Zone, UserLabels: cfg.NodeLabels},
			// kube-proxy's Init (before any Start) picks the mode;
			// NAT outgoing follows it, so a node never mixes backends.
			NATBackend: func() routing.NATBackend { return routing.NATBackend(prx.Mode()) }}, log),
		&component.Await{B: prxBG},
		netpol.New(netpol.Config{NodeName: cfg.NodeName, Clients: clients, VethPrefix: cni.HostVethPrefix,
			NodeIP: cfg.NodeIP, PublicIP: cfg.PublicIP}, log),
		// The carried images besides pause import beside the kubelet's
		// start; the node counts as up once they are in.
		&component.Func{ID: "images", StartFn: ctrd.WaitImages},
		vpnroute.New(vpnroute.Config{NodeName: cfg.NodeName, NodeIP: cfg.NodeIP, ClusterCIDR: cfg.ClusterCIDR, ServiceCIDR: cfg.ServiceCIDR, Kubeconfig: creds.Kubeconfig}, log),
		&nodeReady{name: cfg.NodeName, kubeconfig: creds.Kubeconfig},
		lbspeaker.New(lbspeaker.Config{NodeName: cfg.NodeName, NodeIP: cfg.NodeIP, PublicIP: cfg.PublicIP, Clients: clients}, log),
		tunnel.New(tunnel.Config{ServerHost: creds.TunnelServer, Servers: creds.TunnelServers, CACert: creds.ClientCA,
			ClientCert: creds.TunnelCert, ClientKey: creds.TunnelKey, NodeName: cfg.NodeName, NodeIP: cfg.NodeIP}, log),
		&memoryTrim{log: log},
	), nil
}

// stage writes the carried binaries (runc, containerd, the CNI plugin, ...)
// into binDir. It replaces what an older iks left at bin/iks-cni (a
// symlink to the iks binary) with the carried plugin.
func stage(binDir string) error {
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", binDir, err)
	}
	_, err := embedded.Stage(binDir)
	return err
}

// nodeReady waits until the node reports Ready.
type nodeReady struct {
	name, kubeconfig string
}

func (n *nodeReady) Name() string                { return "node" }
func (n *nodeReady) Init(context.Context) error  { return nil }
func (n *nodeReady) Start(context.Context) error { return nil }
func (n *nodeReady) Stop(context.Context) error  { return nil }
func (n *nodeReady) Ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	cs, err := kubeutil.WaitClientset(ctx, n.kubeconfig)
	if err != nil {
		return err
	}
	return kubeutil.WaitNodeReady(ctx, cs, n.name)
}
