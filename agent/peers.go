package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"

	"github.com/iks-dev/iks/agent/blockipam"
	"github.com/iks-dev/iks/agent/routing"
	"github.com/iks-dev/iks/internal/kubeutil"
)

// podRouting runs the routing agent fed from Node objects and the node's
// IPAM blocks: every other node is a BGP peer, this node's IPAMBlocks are
// the blocks it advertises (other nodes' blocks are learned over BGP);
// then it sets up NAT outgoing for the cluster's ranges.
type podRouting struct {
	cfg        routing.Config
	kubeconfig string
	blocks     *blockipam.Manager
	log        *slog.Logger
	// natBackend is the NAT outgoing backend: kube-proxy's mode.
	natBackend func() routing.NATBackend

	mu      sync.Mutex
	peers   []routing.Peer
	changed chan struct{}
	router  *routing.Router
	cancel  context.CancelFunc
	// factories are the informer factories Start started; Stop waits
	// for their goroutines.
	factories []informerFactory
	extras    netExtras // status socket, annotations, BGPPeers (netextras.go)
	topo      nodeTopology
}

func (p *podRouting) Name() string { return "routing" }

func (p *podRouting) Init(context.Context) error { return nil }

// Start watches Nodes, starts the router, NAT outgoing and the extras.
// A failure half-way undoes what started (informers, router, status
// socket): a failed Start leaves nothing running.
func (p *podRouting) Start(ctx context.Context) (err error) {
	subnet, err := routing.NodeSubnet(p.cfg.NodeIP)
	if err != nil {
		return err
	}
	cs, err := kubeutil.WaitClientset(ctx, p.kubeconfig)
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
	f := informers.NewSharedInformerFactory(cs, 10*time.Minute)
	p.factories = append(p.factories, f)
	inf := f.Core().V1().Nodes().Informer()
	h := func(any) { p.refresh(inf.GetStore()) }
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: h, DeleteFunc: h,
		UpdateFunc: func(_, n any) { h(n) }}); err != nil {
		return fmt.Errorf("watch nodes: %w", err)
	}
	p.extras.nodeStore = inf.GetStore()
	f.Start(runCtx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return fmt.Errorf("list Nodes from the apiserver (kubeconfig %s) did not complete before start-up ended: %w; check the apiserver and the kubelet credentials", p.kubeconfig, context.Cause(ctx))
	}
	p.refresh(inf.GetStore())
	cfg := p.cfg
	cfg.NodeSubnet = subnet
	cfg.Peers = p
	cfg.LocalBlocks = p.blocks.Blocks
	router := routing.New(cfg, p.log)
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
	if err := routing.EnsureNATOutgoing(ctx, p.natBackend(), nw.PodCIDR, nw.ServiceCIDR); err != nil {
		return err
	}
	if err := p.startExtras(ctx, runCtx, cs); err != nil {
		return err
	}
	p.log.Info("pod routing up", "component", "routing", "encapsulation", router.Encapsulation(), "subnet", subnet.String())
	return nil
}

// refresh recomputes peers and local blocks from the node store.
func (p *podRouting) refresh(store cache.Store) {
	var peers []routing.Peer
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
				peers = append(peers, routing.Peer{Name: n.Name, IP: ip})
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

// Peers implements routing.PeerSource.
func (p *podRouting) Peers() []routing.Peer {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append(append([]routing.Peer(nil), p.peers...), p.externalPeers()...)
}

// Changed implements routing.PeerSource.
func (p *podRouting) Changed() <-chan struct{} { return p.changed }

func (p *podRouting) Healthy() error {
	p.mu.Lock()
	r := p.router
	p.mu.Unlock()
	if r == nil {
		return nil
	}
	return r.Healthy()
}

// Stop undoes Start, also a failed one: extras, router, informers. It is
// idempotent.
func (p *podRouting) Stop(ctx context.Context) error {
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
	for _, f := range p.factories {
		f.Shutdown()
	}
	p.factories = nil
	return err
}

// informerFactory is what Stop needs of a (typed or dynamic) factory.
type informerFactory interface{ Shutdown() }
