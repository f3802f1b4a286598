package server

import (
	"log/slog"
	"path/filepath"
	"time"

	"github.com/iks-dev/iks/internal/component"
	"github.com/iks-dev/iks/internal/config"
	"github.com/iks-dev/iks/internal/kubeclients"
	"github.com/iks-dev/iks/server/csrapprove"
	"github.com/iks-dev/iks/server/etcd"
	"github.com/iks-dev/iks/server/ha"
	"github.com/iks-dev/iks/server/lb"
	"github.com/iks-dev/iks/server/leader"
	"github.com/iks-dev/iks/server/netctl"
	"github.com/iks-dev/iks/server/nodeaddr"
)

// ControllersLease names the Lease (in kube-system) the HA servers elect
// the leader of iks's own controllers with.
const ControllersLease = "iks-controllers"

// controllerComponents returns iks's own controllers that must run once
// in the cluster: the CSR approver, the LoadBalancer IP allocator, the
// node address and VPN controllers, the BGPPeer checker, the add-on
// deployer, the ALB and DNS replica controllers and, with several
// servers, the etcd member clean-up of deleted server Nodes.
//
// They start after crds, the servers' own installs of the CRDs they
// watch (which they would otherwise race to create). A single server
// runs them in its start order, without an election (nothing to
// coordinate with, and no Lease write every 2s); the second list are the
// Awaits of those started in the background, to place last. HA servers
// run them behind one leader election (the Lease holder identity is the
// node name) and the Awaits are part of the leader's set.
func controllerComponents(cfg *config.Server, admin string, clients *kubeclients.Clients, crds []*component.Background, log *slog.Logger) ([]component.Component, []component.Component, error) {
	build := func() ([]component.Component, []component.Component, error) {
		lbCtl := component.InBackground(lb.New(lbConfig(cfg, clients), log))
		bgpPeers := component.InBackground(netctl.NewBGPPeers(clients, log))
		var comps []component.Component
		for _, b := range crds {
			comps = append(comps, &component.Await{B: b})
		}
		comps = append(comps,
			csrapprove.New(csrapprove.Config{Clients: clients, Signer: csrSigner(cfg, log)}, log),
			lbCtl,
			nodeaddr.New(clients, log),
			vpnController(cfg, admin, log),
			bgpPeers,
		)
		addons, err := addonComponents(cfg, admin, clients, log)
		if err != nil {
			return nil, nil, err
		}
		comps = append(comps, addons...)
		if cfg.HA.Enabled() {
			comps = append(comps, &ha.MemberGC{Clients: clients, Etcd: etcd.LocalClientFiles(cfg.Paths().TLSDir()),
				Log: log.With("component", "etcd-member-gc")})
		}
		return comps, []component.Component{&component.Await{B: lbCtl}, &component.Await{B: bgpPeers}}, nil
	}
	if !cfg.HA.Enabled() {
		return build()
	}
	g := leader.New(leader.Config{Clients: clients, Namespace: "kube-system", Name: ControllersLease, Identity: cfg.NodeName,
		New: func() ([]component.Component, error) {
			comps, awaits, err := build()
			return append(comps, awaits...), err
		}}, log)
	return []component.Component{g}, nil, nil
}

// lbConfig is the LoadBalancer controller's configuration.
func lbConfig(cfg *config.Server, clients *kubeclients.Clients) lb.Config {
	return lb.Config{Clients: clients, Subnets: cfg.PortableSubnets, ClusterCIDR: cfg.ClusterCIDR, ServiceCIDR: cfg.ServiceCIDR}
}

// csrSigner is the cluster CA the CSR approver signs joining kubelets'
// client certificates with, for kube-controller-manager's default
// --cluster-signing-duration (1 year); nil (kube-controller-manager signs)
// when the CA cannot be read.
func csrSigner(cfg *config.Server, log *slog.Logger) *csrapprove.Signer {
	tls := cfg.Paths().TLSDir()
	s, err := csrapprove.LoadSigner(filepath.Join(tls, "ca.crt"), filepath.Join(tls, "ca.key"), 365*24*time.Hour)
	if err != nil {
		log.Warn("joining kubelets' client certificates will be signed by kube-controller-manager", "err", err)
		return nil
	}
	return s
}
