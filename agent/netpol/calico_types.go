package netpol

import "k8s.io/apimachinery/pkg/util/intstr"

// Calico's projectcalico.org/v3 resources as iks serves them (CRDs in
// manifests/network-policy.yaml): the fields the engine reads, with
// Calico's JSON names. Fields iks does not implement (http, services,
// ipVersion 6) are left out and ignored.
const (
	CalicoGroup   = "projectcalico.org"
	CalicoVersion = "v3"
)

// CalicoPolicySpec is the spec of a GlobalNetworkPolicy and of a
// (namespaced) NetworkPolicy; the namespaced kind has no
// namespaceSelector, doNotTrack, preDNAT or applyOnForward.
type CalicoPolicySpec struct {
	Tier                   string       `json:"tier,omitempty"`
	Order                  *float64     `json:"order,omitempty"`
	Selector               string       `json:"selector,omitempty"`
	NamespaceSelector      string       `json:"namespaceSelector,omitempty"`
	ServiceAccountSelector string       `json:"serviceAccountSelector,omitempty"`
	Types                  []string     `json:"types,omitempty"`
	Ingress                []CalicoRule `json:"ingress,omitempty"`
	Egress                 []CalicoRule `json:"egress,omitempty"`
	DoNotTrack             bool         `json:"doNotTrack,omitempty"`
	PreDNAT                bool         `json:"preDNAT,omitempty"`
	ApplyOnForward         bool         `json:"applyOnForward,omitempty"`
}

// CalicoRule is one rule of a Calico policy.
type CalicoRule struct {
	Action      string              `json:"action"`
	IPVersion   *int                `json:"ipVersion,omitempty"`
	Protocol    *intstr.IntOrString `json:"protocol,omitempty"`
	NotProtocol *intstr.IntOrString `json:"notProtocol,omitempty"`
	ICMP        *CalicoICMP         `json:"icmp,omitempty"`
	NotICMP     *CalicoICMP         `json:"notICMP,omitempty"`
	Source      CalicoEntity        `json:"source,omitempty"`
	Destination CalicoEntity        `json:"destination,omitempty"`
}

// CalicoICMP is an ICMP type and code match.
type CalicoICMP struct {
	Type *int `json:"type,omitempty"`
	Code *int `json:"code,omitempty"`
}

// CalicoEntity is a rule's source or destination.
type CalicoEntity struct {
	Nets              []string               `json:"nets,omitempty"`
	NotNets           []string               `json:"notNets,omitempty"`
	Selector          string                 `json:"selector,omitempty"`
	NotSelector       string                 `json:"notSelector,omitempty"`
	NamespaceSelector string                 `json:"namespaceSelector,omitempty"`
	Ports             []intstr.IntOrString   `json:"ports,omitempty"`
	NotPorts          []intstr.IntOrString   `json:"notPorts,omitempty"`
	ServiceAccounts   *CalicoServiceAccounts `json:"serviceAccounts,omitempty"`
}

// CalicoServiceAccounts matches pods by service account name or labels.
type CalicoServiceAccounts struct {
	Names    []string `json:"names,omitempty"`
	Selector string   `json:"selector,omitempty"`
}

// CalicoHostEndpointSpec is a HostEndpoint's spec.
type CalicoHostEndpointSpec struct {
	Node          string               `json:"node,omitempty"`
	InterfaceName string               `json:"interfaceName,omitempty"`
	ExpectedIPs   []string             `json:"expectedIPs,omitempty"`
	Profiles      []string             `json:"profiles,omitempty"`
	Ports         []CalicoEndpointPort `json:"ports,omitempty"`
}

// CalicoEndpointPort is a named port of a host endpoint.
type CalicoEndpointPort struct {
	Name     string `json:"name"`
	Protocol string `json:"protocol"`
	Port     int32  `json:"port"`
}

// CalicoNetworkSetSpec is the spec of a GlobalNetworkSet or NetworkSet.
type CalicoNetworkSetSpec struct {
	Nets []string `json:"nets,omitempty"`
}
