// Package server assembles the control plane of `iks server`: PKI, etcd,
// kube-apiserver, kube-controller-manager, kube-scheduler and, unless
// disabled, the local agent, started in order behind readiness gates.
package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"slices"
	"time"

	"github.com/iks-dev/iks/agent"
	"github.com/iks-dev/iks/internal/component"
	"github.com/iks-dev/iks/internal/config"
	"github.com/iks-dev/iks/internal/kubeclients"
	"github.com/iks-dev/iks/internal/lock"
	"github.com/iks-dev/iks/internal/netapi"
	"github.com/iks-dev/iks/server/apiserver"
	"github.com/iks-dev/iks/server/controllers"
	"github.com/iks-dev/iks/server/lb"
	"github.com/iks-dev/iks/server/netctl"
	"github.com/iks-dev/iks/server/secretsenc"
	"github.com/iks-dev/iks/server/token"
	"github.com/iks-dev/iks/server/tunnel"
)

// StopTimeout bounds a graceful stop.
const StopTimeout = 25 * time.Second

// Run starts the server and blocks until ctx ends (SIGTERM) or a
// component fails, then stops the components in reverse order.
func Run(ctx context.Context, cfg *config.Server, log *slog.Logger) error {
	t0 := time.Now()
	if err := checkComponentArgs(cfg); err != nil {
		return err
	}
	l, err := lock.Acquire(cfg.Paths().LockFile())
	if err != nil {
		return err
	}
	defer l.Release()
	if cfg.Datastore.ClusterReset {
		return clusterReset(ctx, cfg, log)
	}
	etcdHA, err := haEtcd(ctx, cfg, log)
	if err != nil {
		return err
	}
	restart := cfg.RanBefore()
	if err := cfg.RecordClusterInfo(); err != nil {
		return err
	}
	if prev, err := cfg.RecordRun(); err != nil {
		return err
	} else if prev != nil {
		now := config.ThisRun()
		log.Info("data dir last run by another version: upgraded in place", "iks", prev.IKS+" -> "+now.IKS,
			"kubernetes", prev.Kubernetes+" -> "+now.Kubernetes, "etcd", prev.Etcd+" -> "+now.Etcd)
	}
	k, err := ensureCerts(cfg)
	if err != nil {
		return err
	}
	log.Info("certificates ready", "dir", cfg.Paths().TLSDir(), "took", time.Since(t0).Round(time.Millisecond).String())
	p := cfg.Paths()
	ds := etcdForAPIServer(cfg, k)
	admin := kubeconfigPath(cfg, "admin")
	// One set of clients and shared informers for the server's own
	// controllers, stopped once they all have.
	clients := kubeclients.New(admin)
	defer clients.Shutdown()
	egressConfig := filepath.Join(p.ServerDir(), "egress-selector.yaml")
	udsPath := filepath.Join(p.RunDir(), "konnectivity", "konnectivity-server.sock")
	if err := tunnel.WriteEgressSelectorConfig(egressConfig, udsPath); err != nil {
		return err
	}
	encArgs, err := secretsenc.Setup(p.CredDir(), time.Now())
	if err != nil {
		return fmt.Errorf("secrets encryption: %w", err)
	}
	snapshots, err := snapshotScheduler(cfg, k.CAHash(), log)
	if err != nil {
		return err
	}
	var agentBind netip.Addr
	if !cfg.BindAddress.IsUnspecified() {
		agentBind = cfg.BindAddress
	}
	// Every server installs the CRDs its local node waits for, in the
	// background: the node does not wait for them, only the parts that
	// use them do.
	bgpCRD := component.InBackground(&netctl.BGPPeerSetup{Clients: clients})
	lbAPI := component.InBackground(lb.NewAPIObjects(lbConfig(cfg, clients), log))
	comps := []component.Component{
		datastoreComponent(cfg, k, etcdHA, log),
		snapshots,
		// The master tunnel: kube-apiserver reaches kubelets and pods only
		// through the agents that nodes connect out with.
		tunnel.New(tunnel.Config{UDSPath: udsPath, AgentBindAddress: agentBind,
			ServerCert: k.APIServerCert, ServerKey: k.APIServerKey, ClusterCACert: k.CACert}, log),
		apiserver.New(apiserver.Config{
			BindAddress: cfg.BindAddress, AdvertiseAddress: cfg.NodeIP, Port: config.APIServerPort,
			ServiceCIDR: cfg.ServiceCIDR, ClusterDomain: cfg.ClusterDomain,
			EtcdURL: ds.URL, EtcdCA: ds.CA, EtcdCert: ds.Cert, EtcdKey: ds.Key,
			CA: k.CACert, ServingCert: k.APIServerChainCert, ServingKey: k.APIServerKey,
			KubeletClientCert: k.APIServerKubeletClientCert, KubeletClientKey: k.APIServerKubeletClientKey,
			FrontProxyCA: k.FrontProxyCACert, FrontProxyCert: k.FrontProxyClientCert, FrontProxyKey: k.FrontProxyClientKey,
			SAPublicKey: k.ServiceAccountPub, SASigningKey: k.ServiceAccountKey,
			CertDir: filepath.Join(p.ServerDir(), "apiserver"), AdminKubeconfig: admin,
			ExtraArgs: slices.Concat([]string{"--egress-selector-config-file=" + egressConfig}, encArgs, cfg.APIServerArgs),
			Restart:   restart, ArgsDir: p.ArgsDir(),
		}, log),
		controllers.NewControllerManager(controllers.ControllerManagerConfig{
			Kubeconfig: kubeconfigPath(cfg, "controller-manager"), CA: k.CACert, CAKey: k.CAKey,
			SAKey: k.ServiceAccountKey, ServiceCIDR: cfg.ServiceCIDR, ExtraArgs: append(leaderElectArgs(cfg), cfg.ControllerManagerArgs...), ArgsDir: p.ArgsDir(),
		}, log),
		newScheduler(cfg, log),
		// Before tokens: an agent may join the moment the token file
		// appears, and uses these grants.
		&nodeRBAC{kubeconfig: admin},
		token.New(token.Config{DataDir: cfg.DataDir, CAHash: k.CAHash(), FromFlag: cfg.Token, Kubeconfig: admin}, log),
		netctl.New(netctl.Config{Kubeconfig: admin, Network: netapi.ClusterNetwork{PodCIDR: cfg.ClusterCIDR,
			ServiceCIDR: cfg.ServiceCIDR, ClusterDomain: cfg.ClusterDomain, BlockSize: cfg.IPAMBlockSize}}, log),
		bgpCRD,
		lbAPI,
	}
	comps = insertAfter(comps, "tokens", haComponents(cfg, admin, log)...)
	ctls, awaits, err := controllerComponents(cfg, admin, clients, []*component.Background{bgpCRD, lbAPI}, log)
	if err != nil {
		return err
	}
	comps = append(comps, ctls...)
	var tunnelServers func() []string
	if cfg.HA.Enabled() {
		// The local node keeps a tunnel to every server, as agents do;
		// the list also tells when this server is missing from it.
		list := &apiServers{clients: clients, self: cfg.NodeIP.String(), log: log.With("component", "apiserver-list")}
		comps = append(comps, list)
		tunnelServers = list.Hosts
	}
	if !cfg.DisableAgent {
		ac, err := agent.Components(cfg.Agent, agent.Credentials{
			Kubeconfig: kubeconfigPath(cfg, "kubelet"), ClientCA: k.CACert,
			ServingCert: k.KubeletServingCert, ServingKey: k.KubeletServingKey,
			TunnelServer: cfg.NodeIP.String(), TunnelServers: tunnelServers,
			TunnelCert: k.KubeletClientCert, TunnelKey: k.KubeletClientKey,
		}, log)
		if err != nil {
			return err
		}
		// containerd needs nothing from the control plane: it starts
		// beside etcd and the apiserver, and kubelet waits for it.
		ctrd, ac := component.Hoist(ac, "containerd")
		if ctrd != nil {
			comps = append([]component.Component{ctrd}, comps...)
		}
		// kubelet needs only containerd and its own files (this node's
		// certificates are issued above, not by CSR): it starts as soon
		// as the apiserver serves and registers the Node while the
		// server's controllers start, instead of after them.
		//
		// Then the node's own network, which is what kubelet waits for to
		// report the Node Ready (its IPAM block and the CNI config), behind
		// only the network API it uses; kube-proxy starts beside it. The
		// cluster's controllers and add-ons start after, while the node is
		// already Ready.
		for _, name := range []string{"containerd", "kubelet", "network-api", "node-rbac", "api-clients", "binaries", "kube-proxy (background)", "ipam", "pod-network"} {
			if i := slices.IndexFunc(comps, func(c component.Component) bool { return c.Name() == name }); i >= 0 {
				c := comps[i]
				comps = insertBefore(slices.Delete(comps, i, i+1), "kube-controller-manager", c)
			} else if i := slices.IndexFunc(ac, func(c component.Component) bool { return c.Name() == name }); i >= 0 {
				comps = insertBefore(comps, "kube-controller-manager", ac[i])
				ac = slices.Delete(ac, i, i+1)
			}
		}
		ac = insertBefore(ac, "routing", &component.Await{B: bgpCRD})
		ac = insertBefore(ac, "lb-speaker", &component.Await{B: lbAPI})
		comps = append(comps, ac...)
		comps = append(comps, &nodeRole{kubeconfig: admin, node: cfg.NodeName, log: log})
	} else {
		comps = append(comps, &component.Await{B: bgpCRD}, &component.Await{B: lbAPI})
	}
	comps = append(comps, awaits...)
	comps = append(comps, &defaultServiceAccount{kubeconfig: admin, log: log})
	m := component.NewManager(log, comps...)
	if err := m.Init(ctx); err != nil {
		return err
	}
	if err := m.Start(ctx); err != nil {
		return err
	}
	if cfg.DisableAgent {
		log.Info(fmt.Sprintf("control plane ready in %s", time.Since(t0).Round(100*time.Millisecond)))
	} else {
		log.Info(fmt.Sprintf("node %s is Ready in %s", cfg.NodeName, time.Since(t0).Round(100*time.Millisecond)))
	}
	log.Info(fmt.Sprintf("use the cluster: iks kubectl get nodes   (or KUBECONFIG=%s kubectl ...)", kubeconfigHint(cfg)))
	return m.Supervise(ctx, 2*time.Second, StopTimeout)
}

func kubeconfigHint(cfg *config.Server) string {
	if cfg.AdminKubeconfig != "" {
		return cfg.AdminKubeconfig
	}
	return kubeconfigPath(cfg, "admin")
}

// insertBefore puts c before the component named name (at the end when
// there is none).
func insertBefore(cs []component.Component, name string, c component.Component) []component.Component {
	i := slices.IndexFunc(cs, func(x component.Component) bool { return x.Name() == name })
	if i < 0 {
		return append(cs, c)
	}
	return slices.Insert(cs, i, c)
}
