package lbpool

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/iks-dev/iks/internal/api"
)

// The PortableSubnet resource (portablesubnets.network.iks.io,
// cluster-scoped) adds a portable subnet to a running cluster, as
// `ibmcloud ks cluster subnet add` does in IKS:
//
//	apiVersion: network.iks.io/v1
//	kind: PortableSubnet
//	metadata: {name: dal10-public-2}
//	spec: {type: public, cidr: 10.0.2.64/29, zone: dal10, vlan: "2234945"}
//
// zone and vlan are optional, with the meaning of CIDR@ZONE,vlan=VLAN in
// --portable-*-subnet. The spec is immutable: delete and re-add.
const (
	ResourceGroup    = api.Group
	ResourceVersion  = api.Version
	ResourcePlural   = "portablesubnets"
	ResourceKind     = "PortableSubnet"
	ResourceCRDName  = ResourcePlural + "." + ResourceGroup
	ResourceListKind = ResourceKind + "List"
)

// GVR is the PortableSubnet resource for dynamic clients.
var GVR = schema.GroupVersionResource{Group: ResourceGroup, Version: ResourceVersion, Resource: ResourcePlural}

// FromUnstructured parses a PortableSubnet object with the rules of the
// flags (the CRD schema refuses most bad values already).
func FromUnstructured(u *unstructured.Unstructured) (Subnet, error) {
	typ, _, _ := unstructured.NestedString(u.Object, "spec", "type")
	cidr, _, _ := unstructured.NestedString(u.Object, "spec", "cidr")
	zone, _, _ := unstructured.NestedString(u.Object, "spec", "zone")
	vlan, _, _ := unstructured.NestedString(u.Object, "spec", "vlan")
	kind, err := ParseKind(typ)
	if err != nil || typ == "" {
		return Subnet{}, fmt.Errorf("PortableSubnet %s: spec.type %q must be public or private", u.GetName(), typ)
	}
	var attrs []string
	if zone != "" {
		attrs = append(attrs, "zone="+zone)
	}
	if vlan != "" {
		attrs = append(attrs, "vlan="+vlan)
	}
	value := cidr
	if len(attrs) > 0 {
		value += "@" + strings.Join(attrs, ",")
	}
	return Parse(kind, "PortableSubnet "+u.GetName()+" spec", value)
}

// Merge returns the flag subnets followed by the resources' subnets that
// do not overlap any earlier one (resources in the order given: oldest
// first), and an error per refused resource naming the overlap.
func Merge(flags []Subnet, resources []NamedSubnet) ([]Subnet, map[string]error) {
	out := slices.Clone(flags)
	refused := map[string]error{}
	for _, r := range resources {
		if i := slices.IndexFunc(out, func(s Subnet) bool { return s.Prefix.Overlaps(r.Subnet.Prefix) }); i >= 0 {
			refused[r.Name] = fmt.Errorf("PortableSubnet %s: %s overlaps the portable subnet %s already in use: remove one of them", r.Name, r.Subnet.Prefix, out[i].Prefix)
			continue
		}
		out = append(out, r.Subnet)
	}
	return out, refused
}

// NamedSubnet is a subnet from a PortableSubnet resource.
type NamedSubnet struct {
	Name   string
	Subnet Subnet
}

// Overlapping reports whether p overlaps any of ranges.
func Overlapping(p netip.Prefix, ranges ...netip.Prefix) bool {
	return slices.ContainsFunc(ranges, func(r netip.Prefix) bool { return r.IsValid() && r.Overlaps(p) })
}
