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

	mu      sync.Mutex
	peers   []routing.Peer
	changed chan struct{}
	router  *routing.Router
	cancel  context.CancelFunc
	extras  netExtras // status socket, annotations, BGPPeers (netextras.go)
	topo    nodeTopology
}

func (p *podRouting) Name() string { return "routing" }

func (p *podRouting) Init(context.Context) error { return nil }

func (p *podRouting) Start(ctx context.Context) error {
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
	f := informers.NewSharedInformerFactory(cs, 10*time.Minute)
	inf := f.Core().V1().Nodes().Informer()
	h := func(any) { p.refresh(inf.GetStore()) }
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: h, DeleteFunc: h,
		UpdateFunc: func(_, n any) { h(n) }}); err != nil {
		return fmt.Errorf("watch nodes: %w", err)
	}
	p.extras.nodeStore = inf.GetStore()
	f.Start(runCtx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return fmt.Errorf("node informer did not sync")
	}
	p.refresh(inf.GetStore())
	cfg := p.cfg
	cfg.NodeSubnet = subnet
	cfg.Peers = p
	cfg.LocalBlocks = p.blocks.Blocks
	p.router = routing.New(cfg, p.log)
	p.blocks.OnChange(p.router.Resync)
	if err := p.router.Init(ctx); err != nil {
		return err
	}
	if err := p.router.Start(ctx); err != nil {
		return err
	}
	nw := p.blocks.Network()
	if err := routing.EnsureNATOutgoing(ctx, nw.PodCIDR, nw.ServiceCIDR); err != nil {
		return err
	}
	if err := p.startExtras(ctx, runCtx, cs); err != nil {
		return err
	}
	p.log.Info("pod routing up", "component", "routing", "encapsulation", p.router.Encapsulation(), "subnet", subnet.String())
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
	if p.router == nil {
		return nil
	}
	return p.router.Healthy()
}

func (p *podRouting) Stop(ctx context.Context) error {
	err := p.stopExtras(ctx)
	if p.router != nil {
		err = errors.Join(err, p.router.Stop(ctx))
	}
	if p.cancel != nil {
		p.cancel()
	}
	return err
}
