// Package netapi holds the iks network API shared by server, agent and
// CLI: the IPAMBlock custom resource (network.iks.io/v1) in which nodes
// claim address blocks of the pod range, the kube-system/iks-cluster-network
// ConfigMap that tells agents the cluster's address plan, and the block
// arithmetic both sides must agree on.
package netapi

import (
	"fmt"
	"net/netip"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/iks-dev/iks/internal/api"
)

// API group, version and the IPAMBlock resource.
const (
	Group           = api.Group
	Version         = api.Version
	IPAMBlockKind   = "IPAMBlock"
	IPAMBlockList   = "IPAMBlockList"
	IPAMBlockPlural = "ipamblocks"
	// IPAMBlockCRDName is the CustomResourceDefinition's name.
	IPAMBlockCRDName = IPAMBlockPlural + "." + Group
	// NodeField is the selectable field nodes list their blocks by.
	NodeField = "spec.node"
)

// IPAMBlockGVR is the IPAMBlock resource for dynamic clients.
var IPAMBlockGVR = schema.GroupVersionResource{Group: Group, Version: Version, Resource: IPAMBlockPlural}

// IPAMBlock is one block of the pod range claimed by a node. Its name is
// derived from the CIDR (BlockName), so creating it is the atomic claim:
// a second node creating the same block gets AlreadyExists.
type IPAMBlock struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              IPAMBlockSpec   `json:"spec"`
	Status            IPAMBlockStatus `json:"status,omitempty"`
}

// IPAMBlockSpec is immutable once created.
type IPAMBlockSpec struct {
	// CIDR is the block, e.g. 172.30.0.64/26.
	CIDR string `json:"cidr"`
	// Node is the name of the node that owns the block.
	Node string `json:"node"`
}

// IPAMBlockStatus is reported by the owning node's agent.
type IPAMBlockStatus struct {
	// Allocated is the number of addresses handed to pods.
	Allocated int `json:"allocated"`
	// Capacity is the number of addresses pods can get from the block.
	Capacity int `json:"capacity"`
}

// Prefix parses Spec.CIDR.
func (b *IPAMBlock) Prefix() (netip.Prefix, error) {
	p, err := netip.ParsePrefix(b.Spec.CIDR)
	if err != nil || !p.Addr().Is4() || p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("IPAMBlock %s: spec.cidr %q is not an IPv4 network prefix", b.Name, b.Spec.CIDR)
	}
	return p, nil
}

// NewIPAMBlock returns the object that claims block for node, owned by
// the node's Node object (name and UID) so that the garbage collector
// deletes it with the Node.
func NewIPAMBlock(block netip.Prefix, node string, nodeUID string) *IPAMBlock {
	b := &IPAMBlock{
		TypeMeta:   metav1.TypeMeta{APIVersion: Group + "/" + Version, Kind: IPAMBlockKind},
		ObjectMeta: metav1.ObjectMeta{Name: BlockName(block), Labels: map[string]string{api.ManagedByLabel: api.ManagedBy}},
		Spec:       IPAMBlockSpec{CIDR: block.String(), Node: node},
	}
	b.OwnerReferences = []metav1.OwnerReference{NodeOwner(node, nodeUID)}
	return b
}

// NodeOwner is the owner reference to a Node object.
func NodeOwner(node, uid string) metav1.OwnerReference {
	return metav1.OwnerReference{APIVersion: "v1", Kind: "Node", Name: node, UID: types.UID(uid)}
}

// OwnedBy reports whether the block's owner references name exactly this
// Node (name and UID).
func (b *IPAMBlock) OwnedBy(node, uid string) bool {
	for _, o := range b.OwnerReferences {
		if o.Kind == "Node" && o.Name == node && string(o.UID) == uid {
			return true
		}
	}
	return false
}

// ToUnstructured converts b for the dynamic client.
func (b *IPAMBlock) ToUnstructured() (*unstructured.Unstructured, error) {
	c := *b
	c.APIVersion, c.Kind = Group+"/"+Version, IPAMBlockKind
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&c)
	if err != nil {
		return nil, fmt.Errorf("encode IPAMBlock %s: %w", b.Name, err)
	}
	return &unstructured.Unstructured{Object: m}, nil
}

// FromUnstructured converts an object read with the dynamic client.
func FromUnstructured(u *unstructured.Unstructured) (*IPAMBlock, error) {
	b := &IPAMBlock{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, b); err != nil {
		return nil, fmt.Errorf("decode IPAMBlock %s: %w", u.GetName(), err)
	}
	return b, nil
}
