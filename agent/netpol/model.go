// Package netpol enforces network policy on the node's pods with
// nftables (table inet iks-policy).
//
// Policies of any source map into one internal model (Policy: tier,
// order, selected endpoints, ordered rules with an action); Kubernetes
// NetworkPolicy v1 is the first source (kube.go). The compiler (compile.go)
// turns the model plus the cluster's endpoints into a Program: base chains,
// one chain per policy direction and named sets of pod IPs, CIDR ranges and
// named ports. The engine (engine.go) diffs each new Program against the
// one it programmed last, so a pod or label change only adds and deletes
// set elements; a policy change rewrites only that policy's chain.
package netpol

import (
	"net/netip"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/labels"
)

// Action is what a matching rule does.
type Action string

// Actions. Kubernetes NetworkPolicy only allows; Deny, Log and Pass
// come with the Calico resources (calico.go). Log logs the packet and
// goes on with the next rule; Pass skips the policy's remaining rules
// and the tier's later policies: with the one tier iks has, a pod then
// gets its namespace's profile (allow, as Calico's Kubernetes profiles),
// a host endpoint none (deny).
const (
	Allow Action = "Allow"
	Deny  Action = "Deny"
	Log   Action = "Log"
	Pass  Action = "Pass"
)

// Direction of a policy part, seen from the selected endpoint.
type Direction string

// Directions.
const (
	Ingress Direction = "ingress"
	Egress  Direction = "egress"
)

// Tier and order Kubernetes NetworkPolicies get (Calico gives them
// order 1000 in its default tier).
const (
	DefaultTier  = "default"
	KubeNPOrder  = 1000
	kubeNPPrefix = "knp"
)

// Endpoint is a pod the policies may select or name as a peer.
type Endpoint struct {
	Namespace, Name string
	Node            string
	IP              netip.Addr
	Labels          labels.Set
	// NamespaceLabels are the labels of the pod's namespace.
	NamespaceLabels labels.Set
	// Ports are the pod's named container ports.
	Ports []NamedPort
	// ServiceAccount is the pod's service account, SALabels its labels
	// (Calico's serviceAccountSelector).
	ServiceAccount string
	SALabels       labels.Set
}

// LabelMatcher is a label selector: Kubernetes' labels.Selector or a
// Calico selector (internal/calicosel).
type LabelMatcher interface {
	Matches(labels.Labels) bool
	String() string
}

// Key is NAMESPACE/NAME.
func (e *Endpoint) Key() string { return e.Namespace + "/" + e.Name }

// NamedPort is one named container port.
type NamedPort struct {
	Name     string
	Protocol string // nft protocol name: tcp, udp, sctp
	Port     int32
}

// Selector picks endpoints by their labels and their namespace.
type Selector struct {
	// Namespace limits the selection to one namespace ("" any).
	Namespace string
	// Namespaces selects by namespace labels (nil: no condition).
	Namespaces LabelMatcher
	// Pods selects by pod labels (nil: no condition). Besides the pod's
	// labels it sees Calico's: projectcalico.org/namespace,
	// projectcalico.org/orchestrator (k8s),
	// projectcalico.org/serviceaccount and the service account's labels
	// as pcsa.KEY (labels.go).
	Pods LabelMatcher
}

// Matches reports whether e is selected.
func (s Selector) Matches(e *Endpoint) bool {
	if s.Namespace != "" && e.Namespace != s.Namespace {
		return false
	}
	if s.Namespaces != nil && !s.Namespaces.Matches(nsView{e.Namespace, e.NamespaceLabels}) {
		return false
	}
	return s.Pods == nil || s.Pods.Matches(podView{e})
}

// Peer is the other side of a rule: endpoints by selector, or address
// ranges (an ipBlock with its excepts already taken out).
type Peer struct {
	Selector *Selector
	Ranges   []Range
}

// Range is an inclusive IPv4 address range.
type Range struct{ From, To netip.Addr }

// Port matches the destination port: a number or range (Port..EndPort),
// a named port, or only the protocol (Port 0, Name "").
type Port struct {
	Protocol string // tcp, udp, sctp
	Port     int32
	EndPort  int32 // 0: just Port
	Name     string
}

// Rule matches traffic by peer and port; nil Peers or Ports match any.
// A Calico rule (Calico non-nil) matches by its own fields instead.
type Rule struct {
	Action Action
	Peers  []Peer
	Ports  []Port
	Calico *CalicoMatch
	// LogPrefix is the log prefix of a Log rule.
	LogPrefix string
}

// CalicoMatch is what a Calico rule matches: every field given must
// hold.
type CalicoMatch struct {
	// Protocol and NotProtocol are nft protocol names or numbers.
	Protocol, NotProtocol string
	ICMP, NotICMP         *ICMP
	Src, Dst              Entity
}

// ICMP matches an ICMP type and, when Code is set, code.
type ICMP struct {
	Type int
	Code *int
}

// Entity is one side of a Calico rule (source or destination); every
// field given must hold.
type Entity struct {
	// Selector selects endpoints, host endpoints and network sets (nil:
	// any address); NotSelector excludes them.
	Selector, NotSelector *Selector
	// Nets: the address is in one of them (nil: any; empty, as when
	// only IPv6 nets were given: nothing); NotNets: in none.
	Nets, NotNets []Range
	// Ports: one of them (nil: any); NotPorts: none of them (numbers and
	// ranges only).
	Ports, NotPorts []Port
}

// Policy is one policy of the internal model.
type Policy struct {
	// ID is unique among policies and stable: "knp:NAMESPACE/NAME".
	ID string
	// Tier and Order sort the policies (lower first, then ID).
	Tier  string
	Order float64
	// Selects picks the endpoints the policy applies to.
	Selects Selector
	// Ingress and Egress are nil when the policy does not apply in that
	// direction; an empty non-nil slice isolates without allowing.
	Ingress, Egress []Rule
	// AppliesIngress/AppliesEgress say which directions the policy
	// applies to (policyTypes).
	AppliesIngress, AppliesEgress bool
	// Global policies (GlobalNetworkPolicy) may select host endpoints.
	Global bool
	// PreDNAT, DoNotTrack and ApplyOnForward are Calico's host endpoint
	// options (hostep.go).
	PreDNAT, DoNotTrack, ApplyOnForward bool
}

// Calico reports whether p comes from a Calico resource.
func (p *Policy) Calico() bool {
	return strings.HasPrefix(p.ID, gnpPrefix+":") || strings.HasPrefix(p.ID, cnpPrefix+":")
}

// HostEndpoint is an interface of a node the policies protect (Calico's
// HostEndpoint).
type HostEndpoint struct {
	Name, Node string
	// Interface is the interface name; "*" is every interface of the
	// node but loopback and the pods' veths.
	Interface string
	IPs       []netip.Addr
	Labels    labels.Set
	// Ports are the host endpoint's named ports.
	Ports []NamedPort
}

// NetworkSet is a labelled set of networks (Calico's NetworkSet and,
// with no Namespace, GlobalNetworkSet) that rule selectors match.
type NetworkSet struct {
	Namespace, Name string
	Labels          labels.Set
	Nets            []Range
}

// Rules returns the rules of one direction and whether the policy
// applies in that direction.
func (p *Policy) Rules(d Direction) ([]Rule, bool) {
	if d == Ingress {
		return p.Ingress, p.AppliesIngress
	}
	return p.Egress, p.AppliesEgress
}

// SortPolicies orders policies by tier, order, then ID.
func SortPolicies(ps []*Policy) {
	sort.Slice(ps, func(i, j int) bool {
		a, b := ps[i], ps[j]
		if a.Tier != b.Tier {
			return a.Tier < b.Tier
		}
		if a.Order != b.Order {
			return a.Order < b.Order
		}
		return a.ID < b.ID
	})
}

// Applying returns, in evaluation order, the policies that select e in
// direction d (ingress or egress). None means e is not isolated in d.
func Applying(policies []*Policy, e *Endpoint, d Direction) []*Policy {
	ps := append([]*Policy(nil), policies...)
	SortPolicies(ps)
	var out []*Policy
	for _, p := range ps {
		if _, applies := p.Rules(d); applies && p.Selects.Matches(e) {
			out = append(out, p)
		}
	}
	return out
}
