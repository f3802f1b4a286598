package routing

import (
	"context"
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/iks-dev/iks/internal/bgppeer"
)

// Node annotations the routing agent sets on its own Node (the kubelet
// credentials may patch it: NodeRestriction lets a node change its own
// Node object).
const (
	AnnotationEncapsulation = "network.iks.io/encapsulation" // e.g. "VXLAN CrossSubnet"
	AnnotationIPv4Address   = "network.iks.io/ipv4-address"  // node IP/prefix, e.g. 10.0.1.5/24
)

// componentExtras is what the routing component runs besides the router: the
// status socket of `iks net status`, the node annotations and the
// BGPPeer watch that yields external peers.
type componentExtras struct {
	socket    string
	status    *StatusServer
	nodeStore cache.Store
	peerStore cache.Store
}

// startExtras starts the BGPPeer watch, the status socket and writes the
// node annotations.
func (p *Component) startExtras(ctx, runCtx context.Context, cs kubernetes.Interface) error {
	inf := p.clients.DynamicInformers().ForResource(bgppeer.GVR).Informer()
	h := func(any) { p.notify() }
	if err := p.regs.Add(inf, cache.ResourceEventHandlerFuncs{AddFunc: h, DeleteFunc: h,
		UpdateFunc: func(_, n any) { h(n) }}); err != nil {
		return fmt.Errorf("watch BGPPeers: %w", err)
	}
	p.extras.peerStore = inf.GetStore()
	p.clients.Start() // no wait: external peers follow once listed

	if p.extras.socket != "" {
		s, err := ServeStatus(p.extras.socket, p.statusWithTopology, p.log)
		if err != nil {
			return err
		}
		p.extras.status = s
	}
	subnet, err := NodeSubnet(p.cfg.NodeIP)
	if err != nil {
		return err
	}
	ones := subnet.Bits()
	labels, annotations, err := p.topo.metadata()
	if err != nil {
		return err
	}
	annotations[AnnotationEncapsulation] = p.router.EncapsulationLabel()
	annotations[AnnotationIPv4Address] = fmt.Sprintf("%s/%d", p.cfg.NodeIP, ones)
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"labels": labels, "annotations": annotations}})
	if _, err := cs.CoreV1().Nodes().Patch(ctx, p.cfg.NodeName, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("label node %s with its encapsulation, zone and VLANs: %w", p.cfg.NodeName, err)
	}
	return nil
}

func (p *Component) stopExtras(ctx context.Context) error {
	s := p.extras.status
	p.extras.status = nil
	if s != nil {
		return s.Close(ctx)
	}
	return nil
}

// notify tells the router that peers may have changed.
func (p *Component) notify() {
	select {
	case p.changed <- struct{}{}:
	default:
	}
}

// externalPeers returns the BGPPeers that select this node. Invalid ones
// are skipped here; the server reports them as events.
func (p *Component) externalPeers() []Peer {
	if p.extras.peerStore == nil || p.extras.nodeStore == nil {
		return nil
	}
	var nodeLabels map[string]string
	if o, ok, _ := p.extras.nodeStore.GetByKey(p.cfg.NodeName); ok {
		if n, ok := o.(*corev1.Node); ok {
			nodeLabels = n.Labels
		}
	}
	var out []Peer
	for _, o := range p.extras.peerStore.List() {
		u, ok := o.(*unstructured.Unstructured)
		if !ok {
			continue
		}
		bp, err := bgppeer.FromUnstructured(u)
		if err != nil || !bp.Selects(p.cfg.NodeName, nodeLabels) {
			continue
		}
		out = append(out, Peer{Name: "bgppeer/" + bp.Name, IP: bp.Spec.PeerIP, External: true, ASN: bp.Spec.ASNumber})
	}
	return out
}
