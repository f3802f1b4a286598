// Package bgppeer is the BGPPeer resource (bgppeers.network.iks.io,
// cluster-scoped) shared by the server, which installs its CRD and
// reports invalid objects, and the agent, which peers with the routers
// that select its node.
//
//	apiVersion: network.iks.io/v1
//	kind: BGPPeer
//	metadata: {name: tor-a}
//	spec:
//	  peerIP: 10.0.1.254
//	  asNumber: 64600
//	  nodeSelector: "rack == 'a'"   # or node: worker-1; neither = every node
package bgppeer

import (
	"fmt"
	"net/netip"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/iks-dev/iks/internal/api"
)

// API coordinates.
const (
	Group    = api.Group
	Version  = api.Version
	Resource = "bgppeers"
	Kind     = "BGPPeer"
)

// GVR is the resource of BGPPeer objects.
var GVR = schema.GroupVersionResource{Group: Group, Version: Version, Resource: Resource}

// Spec is a BGPPeer's spec.
type Spec struct {
	PeerIP       netip.Addr
	ASNumber     uint32
	NodeSelector string
	Node         string
}

// Peer is a parsed BGPPeer.
type Peer struct {
	Name     string
	Spec     Spec
	Selector labels.Selector // nil when spec.node is used
}

// FromUnstructured parses and checks a BGPPeer object. The CRD schema
// already refuses a bad peerIP or asNumber; a bad nodeSelector (which a
// schema cannot check) is reported here.
func FromUnstructured(u *unstructured.Unstructured) (Peer, error) {
	p := Peer{Name: u.GetName()}
	ip, _, _ := unstructured.NestedString(u.Object, "spec", "peerIP")
	asn, _, _ := unstructured.NestedInt64(u.Object, "spec", "asNumber")
	p.Spec.NodeSelector, _, _ = unstructured.NestedString(u.Object, "spec", "nodeSelector")
	p.Spec.Node, _, _ = unstructured.NestedString(u.Object, "spec", "node")
	addr, err := netip.ParseAddr(ip)
	if err != nil || !addr.Is4() {
		return p, fmt.Errorf("BGPPeer %s: spec.peerIP %q is not an IPv4 address", p.Name, ip)
	}
	p.Spec.PeerIP = addr
	if asn < 1 || asn > 4294967295 {
		return p, fmt.Errorf("BGPPeer %s: spec.asNumber %d is out of range 1-4294967295", p.Name, asn)
	}
	p.Spec.ASNumber = uint32(asn)
	if p.Spec.Node != "" && p.Spec.NodeSelector != "" {
		return p, fmt.Errorf("BGPPeer %s: set spec.node or spec.nodeSelector, not both", p.Name)
	}
	if p.Spec.Node == "" {
		sel, err := ParseSelector(p.Spec.NodeSelector)
		if err != nil {
			return p, fmt.Errorf("BGPPeer %s: spec.nodeSelector %q: %w", p.Name, p.Spec.NodeSelector, err)
		}
		p.Selector = sel
	}
	return p, nil
}

// Selects reports whether the peer applies to the node with these name
// and labels.
func (p Peer) Selects(node string, nodeLabels map[string]string) bool {
	if p.Spec.Node != "" {
		return p.Spec.Node == node
	}
	return p.Selector != nil && p.Selector.Matches(labels.Set(nodeLabels))
}
