// Package vpnroute is the node side of the strongSwan VPN: on every node
// it routes each VPNConnection's remote subnets to the connection's
// gateway node (through the same next hop as that node's pod block:
// native, IP-in-IP or VXLAN), keeps pod sources toward them (no NAT
// outgoing), and blackholes them while the tunnel is down so that no
// packet leaves in clear text. On the gateway node the NAT options
// (localSubnetNAT, remoteSubnetNAT, enableSingleSourceIP) are applied
// with nftables; charon's own routing table sends the traffic into its
// TUN device (kernel-libipsec) while the tunnel is up. With
// zoneSpecificRoutes only the nodes of the gateway's zone route to it.
package vpnroute

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"sigs.k8s.io/knftables"

	"github.com/vishvananda/netlink"

	"github.com/iks-dev/iks/agent/routing"
	"github.com/iks-dev/iks/internal/kubeutil"
	"github.com/iks-dev/iks/internal/netapi"
	"github.com/iks-dev/iks/internal/vpnconn"
)

// resync re-applies routes and rules even without a change (a gateway's
// next hop can change with the pod routes).
const resync = 5 * time.Second

// Config of the component.
type Config struct {
	NodeName                 string
	NodeIP                   netip.Addr // pods' address toward the remote with enablePodSNAT
	ClusterCIDR, ServiceCIDR netip.Prefix
	Kubeconfig               string // the node's
}

// Router is the component.
type Router struct {
	cfg     Config
	log     *slog.Logger
	store   cache.Store
	cs      kubernetes.Interface
	blocks  *netapi.BlockClient
	nft     knftables.Interface
	trigger chan struct{}
	roles   map[string]string // last logged role per connection
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// New returns the component.
func New(cfg Config, log *slog.Logger) *Router {
	return &Router{cfg: cfg, log: log.With("component", "vpn-routes"), trigger: make(chan struct{}, 1), roles: map[string]string{}}
}

// Name implements component.Component.
func (r *Router) Name() string { return "vpn-routes" }

// Init implements component.Component.
func (r *Router) Init(context.Context) error { return nil }

// Start watches the VPNConnections and starts the reconcile loop.
func (r *Router) Start(ctx context.Context) error {
	rc, err := kubeutil.RESTConfig(r.cfg.Kubeconfig)
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("vpnroute: client: %w", err)
	}
	r.blocks = netapi.NewBlockClientFor(dyn)
	if r.cs, err = kubernetes.NewForConfig(rc); err != nil {
		return fmt.Errorf("vpnroute: client: %w", err)
	}
	if r.nft, err = knftables.New(knftables.IPv4Family, Table); err != nil {
		r.log.Warn("no nftables: VPN NAT options and pod-source keeping are not applied", "err", err)
		r.nft = nil
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r.cancel = cancel
	f := dynamicinformer.NewDynamicSharedInformerFactory(dyn, time.Minute)
	inf := f.ForResource(vpnconn.GVR).Informer()
	kick := func(any) {
		select {
		case r.trigger <- struct{}{}:
		default:
		}
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: kick, UpdateFunc: func(_, n any) { kick(n) }, DeleteFunc: kick}); err != nil {
		cancel()
		return fmt.Errorf("vpnroute: watch %s: %w", vpnconn.Resource, err)
	}
	r.store = inf.GetStore()
	f.Start(runCtx.Done())
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		// The CRD may not be served yet: the informer retries; reconcile
		// only once it has listed.
		for !inf.HasSynced() {
			select {
			case <-runCtx.Done():
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
		t := time.NewTicker(resync)
		defer t.Stop()
		for {
			if err := r.reconcile(runCtx); err != nil {
				r.log.Warn("VPN routes not fully applied", "err", err)
			}
			select {
			case <-runCtx.Done():
				return
			case <-r.trigger:
			case <-t.C:
			}
		}
	}()
	return nil
}

// Stop implements component.Component. Routes and rules stay: a
// restarting agent must not open a clear-text window.
func (r *Router) Stop(context.Context) error {
	if r.cancel != nil {
		r.cancel()
		r.wg.Wait()
	}
	return nil
}

func (r *Router) cluster() []netip.Prefix {
	var out []netip.Prefix
	for _, p := range []netip.Prefix{r.cfg.ClusterCIDR, r.cfg.ServiceCIDR} {
		if p.IsValid() {
			out = append(out, p)
		}
	}
	return out
}

// reconcile computes every connection's role and applies routes and rules.
func (r *Router) reconcile(ctx context.Context) error {
	cl := vpnconn.Cluster{PodCIDR: r.cfg.ClusterCIDR, ServiceCIDR: r.cfg.ServiceCIDR}
	var plans []connPlan
	want := map[netip.Prefix]*netlink.Route{}
	hops := map[string]*nextHop{}
	zone, zoneRead := "", false
	for _, o := range r.store.List() {
		u, ok := o.(*unstructured.Unstructured)
		if !ok {
			continue
		}
		c, err := vpnconn.FromUnstructured(u)
		if err != nil {
			continue
		}
		if v := c.Status.Condition(vpnconn.ConditionValid); v != nil && v.Status == metav1.ConditionFalse {
			r.logRole(c.Name, "invalid: no routes")
			continue
		}
		p, err := vpnconn.Validate(c.Name, c.Spec, cl)
		if err != nil {
			r.logRole(c.Name, "invalid: no routes")
			continue
		}
		cp := connPlan{Plan: p, Role: roleOf(c, r.cfg.NodeName), GatewayNode: c.Status.Gateway.Node}
		if p.RouteZone != "" && !zoneRead {
			var zerr error
			if zone, zerr = r.nodeZone(ctx); zerr != nil {
				r.log.Warn("cannot read this node's zone: zone-specific VPN routes blackholed", "err", zerr)
			}
			zoneRead = true
		}
		cp = inZone(cp, zone)
		var hop *nextHop
		if cp.Role == RoleVia {
			h, ok := hops[cp.GatewayNode]
			if !ok {
				h = r.hop(ctx, cp.GatewayNode)
				hops[cp.GatewayNode] = h
			}
			if hop = h; hop == nil {
				cp.Role = RoleDown
			}
		}
		plans = append(plans, cp)
		for _, d := range p.Routed {
			want[d] = wantRoute(d, hop)
		}
		r.logRole(c.Name, describe(cp))
	}
	err := applyRoutes(want)
	if r.nft != nil {
		if len(plans) == 0 {
			r.removeTable(ctx)
		} else if nerr := applyNFT(ctx, r.nft, r.cluster(), plans, r.cfg.NodeIP); nerr != nil {
			return nerr
		}
	}
	for name := range r.roles {
		if !containsConn(plans, name) && r.roles[name] != "invalid: no routes" {
			r.log.Info("VPN connection gone: its routes are removed", "vpnconnection", name)
			delete(r.roles, name)
		}
	}
	return err
}

// hop finds the next hop to the gateway node through its pod blocks.
func (r *Router) hop(ctx context.Context, node string) *nextHop {
	bs, err := r.blocks.List(ctx, node)
	if err != nil || len(bs) == 0 {
		r.log.Warn("gateway node has no pod block to route through: remote subnets blackholed", "node", node, "err", err)
		return nil
	}
	for _, b := range bs {
		p, err := b.Prefix()
		if err != nil {
			continue
		}
		h, err := hopTo(routing.TunnelAddr(p))
		if err == nil {
			return &h
		}
		r.log.Debug("no route through block", "block", p.String(), "err", err)
	}
	return nil
}

func (r *Router) removeTable(ctx context.Context) {
	if _, err := r.nft.List(ctx, "chains"); knftables.IsNotFound(err) {
		return
	}
	tx := r.nft.NewTransaction()
	tx.Delete(&knftables.Table{})
	if err := r.nft.Run(ctx, tx); err != nil && !knftables.IsNotFound(err) {
		r.log.Warn("delete nftables table", "table", Table, "err", err)
	}
}

func (r *Router) logRole(name, role string) {
	if r.roles[name] == role {
		return
	}
	r.roles[name] = role
	r.log.Info("VPN routes", "vpnconnection", name, "state", role)
}

func describe(cp connPlan) string {
	switch cp.Role {
	case RoleGateway:
		return "gateway node: NAT rules here, charon routes into its tunnel (blackhole while down)"
	case RoleVia:
		return "routed to gateway node " + cp.GatewayNode
	case RoleOutOfZone:
		return "outside zone " + cp.Plan.RouteZone + " (zoneSpecificRoutes): remote subnets blackholed"
	default:
		return "tunnel down: remote subnets blackholed"
	}
}

func containsConn(plans []connPlan, name string) bool {
	for _, p := range plans {
		if p.Plan.Name == name {
			return true
		}
	}
	return false
}
