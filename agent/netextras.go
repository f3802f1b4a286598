package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/iks-dev/iks/agent/routing"
	"github.com/iks-dev/iks/internal/bgppeer"
	"github.com/iks-dev/iks/internal/kubeutil"
)

// Node annotations the routing agent sets on its own Node (the kubelet
// credentials may patch it: NodeRestriction lets a node change its own
// Node object).
const (
	AnnotationEncapsulation = "network.iks.io/encapsulation" // e.g. "VXLAN CrossSubnet"
	AnnotationIPv4Address   = "network.iks.io/ipv4-address"  // node IP/prefix, e.g. 10.0.1.5/24
)

// netExtras is what the routing component runs besides the router: the
// status socket of `iks net status`, the node annotations and the
// BGPPeer watch that yields external peers.
type netExtras struct {
	socket    string
	status    *routing.StatusServer
	nodeStore cache.Store
	peerStore cache.Store
}

// startExtras starts the BGPPeer watch, the status socket and writes the
// node annotations.
func (p *podRouting) startExtras(ctx, runCtx context.Context, cs kubernetes.Interface) error {
	rc, err := kubeutil.RESTConfig(p.kubeconfig)
	if err != nil {
		return err
	}
	dc, err := dynamic.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("dynamic client: %w", err)
	}
	f := dynamicinformer.NewDynamicSharedInformerFactory(dc, 10*time.Minute)
	p.factories = append(p.factories, f)
	inf := f.ForResource(bgppeer.GVR).Informer()
	h := func(any) { p.notify() }
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: h, DeleteFunc: h,
		UpdateFunc: func(_, n any) { h(n) }}); err != nil {
		return fmt.Errorf("watch BGPPeers: %w", err)
	}
	p.extras.peerStore = inf.GetStore()
	f.Start(runCtx.Done()) // no wait: external peers follow once listed

	if p.extras.socket != "" {
		s, err := routing.ServeStatus(p.extras.socket, p.statusWithTopology, p.log)
		if err != nil {
			return err
		}
		p.extras.status = s
	}
	subnet, err := routing.NodeSubnet(p.cfg.NodeIP)
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

func (p *podRouting) stopExtras(ctx context.Context) error {
	s := p.extras.status
	p.extras.status = nil
	if s != nil {
		return s.Close(ctx)
	}
	return nil
}

// notify tells the router that peers may have changed.
func (p *podRouting) notify() {
	select {
	case p.changed <- struct{}{}:
	default:
	}
}

// externalPeers returns the BGPPeers that select this node. Invalid ones
// are skipped here; the server reports them as events.
func (p *podRouting) externalPeers() []routing.Peer {
	if p.extras.peerStore == nil || p.extras.nodeStore == nil {
		return nil
	}
	var nodeLabels map[string]string
	if o, ok, _ := p.extras.nodeStore.GetByKey(p.cfg.NodeName); ok {
		if n, ok := o.(*corev1.Node); ok {
			nodeLabels = n.Labels
		}
	}
	var out []routing.Peer
	for _, o := range p.extras.peerStore.List() {
		u, ok := o.(*unstructured.Unstructured)
		if !ok {
			continue
		}
		bp, err := bgppeer.FromUnstructured(u)
		if err != nil || !bp.Selects(p.cfg.NodeName, nodeLabels) {
			continue
		}
		out = append(out, routing.Peer{Name: "bgppeer/" + bp.Name, IP: bp.Spec.PeerIP, External: true, ASN: bp.Spec.ASNumber})
	}
	return out
}
