// Package topology names where a node sits in the IKS network model and
// reads it back from Node objects: its private side (the interface of the
// node IP, which carries all cluster traffic), its optional public side
// (a worker without one is private-only), the VLAN of each side and its
// zone. The agent publishes these as labels and annotations on its own
// Node; the LoadBalancer controller, the speakers and the CLI read them
// from there, so all agree on which node can hold which portable IP.
package topology

import (
	"net/netip"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Labels and annotations on Node objects.
const (
	// LabelPublicVLAN and LabelPrivateVLAN are IKS's node labels naming
	// the VLAN of the node's public/private interface. iks sets them to
	// the interface's L2 network (10.0.1.0/24 becomes "10.0.1.0-24")
	// unless the user set them with --node-label.
	LabelPublicVLAN  = "publicVLAN"
	LabelPrivateVLAN = "privateVLAN"
	// LabelZone is the well-known zone label (the scheduler spreads over
	// it). IKS also sets ibm-cloud.kubernetes.io/zone, a label a node may
	// not set on itself (NodeRestriction); iks uses only this one.
	LabelZone = "topology.kubernetes.io/zone"
	// LabelPrivateOnly is "true" on workers without a public side.
	LabelPrivateOnly = "network.iks.io/private-only"
	// AnnotationPrivateCIDR and AnnotationPublicCIDR hold each side's
	// address with its interface prefix length (10.0.1.5/24).
	AnnotationPrivateCIDR = "network.iks.io/private-cidr"
	AnnotationPublicCIDR  = "network.iks.io/public-cidr"
	// AnnotationPrivateInterface and AnnotationPublicInterface name the
	// interfaces (LoadBalancer IPs of a side are added there).
	AnnotationPrivateInterface = "network.iks.io/private-interface"
	AnnotationPublicInterface  = "network.iks.io/public-interface"
	// DefaultZone is the zone of nodes started without --zone.
	DefaultZone = "default"
)

// Side is public or private.
type Side string

// The two sides of a worker.
const (
	Public  Side = "public"
	Private Side = "private"
)

// VLANLabel is the node label naming the VLAN of this side.
func (s Side) VLANLabel() string {
	if s == Public {
		return LabelPublicVLAN
	}
	return LabelPrivateVLAN
}

func (s Side) cidrAnnotation() string {
	if s == Public {
		return AnnotationPublicCIDR
	}
	return AnnotationPrivateCIDR
}

// Attachment is one side of a node as published on its Node object.
type Attachment struct {
	// CIDR is the side's address with its interface prefix length.
	CIDR netip.Prefix
	// VLAN is the side's VLAN label value.
	VLAN string
}

// Network is the side's L2 network (10.0.1.0/24 for 10.0.1.5/24).
func (a Attachment) Network() netip.Prefix { return a.CIDR.Masked() }

// Valid reports whether the node has this side.
func (a Attachment) Valid() bool { return a.CIDR.IsValid() }

// Of reads one side of a node; the zero Attachment when the node has no
// such side or has not published it yet.
func Of(n *corev1.Node, s Side) Attachment {
	if n == nil {
		return Attachment{}
	}
	p, err := netip.ParsePrefix(n.Annotations[s.cidrAnnotation()])
	if err != nil || !p.Addr().Is4() {
		return Attachment{}
	}
	return Attachment{CIDR: p, VLAN: n.Labels[s.VLANLabel()]}
}

// Zone is the node's zone ("" when not published).
func Zone(n *corev1.Node) string {
	if n == nil {
		return ""
	}
	return n.Labels[LabelZone]
}

// VLANName is the VLAN label value iks derives from an interface's
// network: 10.0.1.0/24 gives "10.0.1.0-24".
func VLANName(p netip.Prefix) string {
	return strings.ReplaceAll(p.Masked().String(), "/", "-")
}

// ValidZone reports a problem with a zone name ("" when fine).
func ValidZone(z string) string {
	if z == "" {
		return "must not be empty"
	}
	if errs := validation.IsValidLabelValue(z); len(errs) > 0 {
		return strings.Join(errs, "; ")
	}
	return ""
}
