package routing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/iks-dev/iks/agent/blockipam"
	"github.com/iks-dev/iks/internal/kubeclients"
)

// Component is the node's pod routing, one component: it runs the
// router fed from Node objects and the node's IPAM blocks (every other
// node is a BGP peer, this node's IPAMBlocks are the blocks it advertises;
// other nodes' blocks are learned over BGP), NAT outgoing for the
// cluster's ranges, the BGPPeer watch, the status socket of `iks net
// status` and the node's routing and topology labels (component_extras.go).
type Component struct {
	cfg     Config
	clients *kubeclients.Clients
	blocks  *blockipam.Manager
	log     *slog.Logger
	// natBackend is the NAT outgoing backend: kube-proxy's mode.
	natBackend func() NATBackend

	mu      sync.Mutex
	peers   []Peer
	changed chan struct{}
	router  *Router
	cancel  context.CancelFunc
	regs    kubeclients.Registrations
	extras  componentExtras // status socket, annotations, BGPPeers (component_extras.go)
	topo    Topology
}

// ComponentConfig configures the Component.
type ComponentConfig struct {
	Router  Config
	Clients *kubeclients.Clients // the agent's (kubelet identity)
	Blocks  *blockipam.Manager
	// StatusSocket serves `iks net status` ("" for none).
	StatusSocket string
	Topology     Topology
	// NATBackend returns kube-proxy's mode, chosen in its Init: NAT
	// outgoing follows it, so a node never mixes firewall backends.
	NATBackend func() NATBackend
}

// NewComponent returns the routing component.
func NewComponent(cfg ComponentConfig, log *slog.Logger) *Component {
	return &Component{cfg: cfg.Router, clients: cfg.Clients, blocks: cfg.Blocks, log: log, natBackend: cfg.NATBackend,
		extras: componentExtras{socket: cfg.StatusSocket}, topo: cfg.Topology}
}

func (p *Component) Name() string { return "routing" }

func (p *Component) Init(context.Context) error { return nil }

// Start watches Nodes, starts the router, NAT outgoing and the extras.
// A failure half-way undoes what started (event handlers, router, status
// socket): a failed Start leaves nothing running but the agent's shared
// informers.
func (p *Component) Start(ctx context.Context) (err error) {
	subnet, err := NodeSubnet(p.cfg.NodeIP)
	if err != nil {
		return err
	}
	cs, err := p.clients.Wait(ctx)
	if err != nil {
		return err
	}
	p.changed = make(chan struct{}, 1)
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p.cancel = cancel
	defer func() {
		if err != nil {
			err = errors.Join(err, p.Stop(context.WithoutCancel(ctx)))
		}
	}()
	inf := p.clients.Informers().Core().V1().Nodes().Informer()
	h := func(any) { p.refresh(inf.GetStore()) }
	if err := p.regs.Add(inf, cache.ResourceEventHandlerFuncs{AddFunc: h, DeleteFunc: h,
		UpdateFunc: func(_, n any) { h(n) }}); err != nil {
		return fmt.Errorf("watch nodes: %w", err)
	}
	p.extras.nodeStore = inf.GetStore()
	p.clients.Start()
	if !cache.WaitForCacheSync(ctx.Done(), p.regs.Synced()...) {
		return fmt.Errorf("list Nodes from the apiserver (kubeconfig %s) did not complete before start-up ended: %w; check the apiserver and the kubelet credentials", p.clients.Kubeconfig(), context.Cause(ctx))
	}
	p.refresh(inf.GetStore())
	cfg := p.cfg
	cfg.NodeSubnet = subnet
	cfg.Peers = p
	cfg.LocalBlocks = p.blocks.Blocks
	router := New(cfg, p.log)
	if err := router.Init(ctx); err != nil {
		return err
	}
	p.mu.Lock()
	p.router = router
	p.mu.Unlock()
	p.blocks.OnChange(router.Resync)
	if err := router.Start(ctx); err != nil {
		return err
	}
	nw := p.blocks.Network()
	if err := EnsureNATOutgoing(ctx, p.natBackend(), nw.PodCIDR, nw.ServiceCIDR); err != nil {
		return err
	}
	if err := p.startExtras(ctx, runCtx, cs); err != nil {
		return err
	}
	p.log.Info("pod routing up", "component", "routing", "encapsulation", router.Encapsulation(), "subnet", subnet.String())
	return nil
}

// refresh recomputes peers and local blocks from the node store.
func (p *Component) refresh(store cache.Store) {
	var peers []Peer
	for _, o := range store.List() {
		n, ok := o.(*corev1.Node)
		if !ok || n.Name == p.cfg.NodeName {
			continue
		}
		for _, a := range n.Status.Addresses {
			if a.Type != corev1.NodeInternalIP {
				continue
			}
			if ip, err := netip.ParseAddr(a.Address); err == nil && ip.Is4() {
				peers = append(peers, Peer{Name: n.Name, IP: ip})
				break
			}
		}
	}
	p.mu.Lock()
	p.peers = peers
	r := p.router
	p.mu.Unlock()
	select {
	case p.changed <- struct{}{}:
	default:
	}
	if r != nil {
		r.Resync()
	}
}

// Peers implements PeerSource.
func (p *Component) Peers() []Peer {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append(append([]Peer(nil), p.peers...), p.externalPeers()...)
}

// Changed implements PeerSource.
func (p *Component) Changed() <-chan struct{} { return p.changed }

func (p *Component) Healthy() error {
	p.mu.Lock()
	r := p.router
	p.mu.Unlock()
	if r == nil {
		return nil
	}
	return r.Healthy()
}

// Stop undoes Start, also a failed one: extras, router, handlers. It is
// idempotent.
func (p *Component) Stop(ctx context.Context) error {
	err := p.stopExtras(ctx)
	p.mu.Lock()
	r := p.router
	p.mu.Unlock()
	if r != nil {
		err = errors.Join(err, r.Stop(ctx))
	}
	if p.cancel != nil {
		p.cancel()
	}
	return errors.Join(err, p.regs.RemoveAll())
}
