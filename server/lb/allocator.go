// Package lb is the server's LoadBalancer controller: it gives every
// Service of type LoadBalancer an IP from the portable public or private
// subnets (IKS NLB 1.0 semantics), writes it to status.loadBalancer, and
// publishes the pools and the RBAC the nodes' speakers need. Allocations
// live only in the Services' status, so they are rebuilt from the API on
// restart and an IP stays with its Service across restarts and node
// re-creation.
package lb

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/iks-dev/iks/internal/lbpool"
)

// Reasons of allocation failures; they are the Warning events' reasons.
const (
	ReasonNoPool       = "NoPortableSubnet"
	ReasonExhausted    = "PoolExhausted"
	ReasonNotInPool    = "IPNotInPool"
	ReasonReserved     = "IPReserved"
	ReasonTaken        = "IPTaken"
	ReasonWrongPool    = "IPInOtherPool"
	ReasonBadRequest   = "InvalidLoadBalancerRequest"
	ReasonNoZone       = "NoPortableSubnetInZone"
	ReasonUnreachable  = "NoNodeOnPortableSubnet"
	maxChoicesInReason = 8
)

// AllocError says why no IP could be given, and what to do.
type AllocError struct {
	Reason string
	Msg    string
}

func (e *AllocError) Error() string { return e.Msg }

// Request is what a Service asks for.
type Request struct {
	Kind lbpool.Kind
	// KindSet is true when the ip-type annotation was given (otherwise a
	// requested IP picks its own pool).
	KindSet bool
	IP      netip.Addr // invalid: any free IP
	// Zone, when set, limits the choice to that zone's subnets.
	Zone string
	// ALB is set for an Ingress ALB's Service (lbpool.LabelALB), which
	// may ask for its subnet's ALB address.
	ALB bool
}

// Allocator hands out service IPs of the portable subnets. It is not safe
// for concurrent use: the controller serialises calls.
type Allocator struct {
	subnets []lbpool.Subnet
	// placed is where each subnet lives (SetPlacement); nil means every
	// subnet is taken as reachable (no node information yet).
	placed map[netip.Prefix]lbpool.Placement
	byIP   map[netip.Addr]string // ip -> service key (namespace/name)
	byKey  map[string]netip.Addr
}

// NewAllocator returns an empty allocator over subnets.
func NewAllocator(subnets []lbpool.Subnet) *Allocator {
	return &Allocator{subnets: subnets, byIP: map[netip.Addr]string{}, byKey: map[string]netip.Addr{}}
}

// Lookup returns the IP a service holds.
func (a *Allocator) Lookup(key string) (netip.Addr, bool) {
	ip, ok := a.byKey[key]
	return ip, ok
}

// Owner returns the service holding ip.
func (a *Allocator) Owner(ip netip.Addr) (string, bool) {
	k, ok := a.byIP[ip]
	return k, ok
}

// Assign records an existing allocation (rebuilding from Services'
// status). It fails when ip is not a service IP or is held by another.
func (a *Allocator) Assign(key string, ip netip.Addr) error {
	if s, ok := lbpool.Find(a.subnets, ip); !ok || !s.IsAnnounced(ip) {
		return &AllocError{ReasonNotInPool, fmt.Sprintf("%s is not a LoadBalancer IP of any portable subnet", ip)}
	}
	if owner, ok := a.byIP[ip]; ok && owner != key {
		return &AllocError{ReasonTaken, fmt.Sprintf("%s is already held by service %s", ip, owner)}
	}
	a.Release(key)
	a.byIP[ip], a.byKey[key] = key, ip
	return nil
}

// Allocate gives key an IP satisfying req. A current allocation that
// satisfies req is kept; otherwise a new IP replaces it. On failure the
// current allocation, if any, is kept.
//
// Only subnets some node is attached to are used, and only those of the
// requested zone. Without an ip-type annotation a service gets a public
// IP when a reachable public subnet exists, else a private one (a cluster
// of private-only workers); an IP it holds is kept either way.
func (a *Allocator) Allocate(key string, req Request) (netip.Addr, error) {
	if req.IP.IsValid() {
		return a.allocateIP(key, req)
	}
	if cur, ok := a.byKey[key]; ok {
		if s, _ := a.serviceSubnet(cur); (s.Kind == req.Kind || !req.KindSet) && (req.Zone == "" || a.inZone(s, req.Zone)) {
			return cur, nil
		}
	}
	if !req.KindSet {
		req.Kind = a.defaultKind(req.Zone)
	}
	var pools, zoned []string
	for _, s := range a.subnets {
		if s.Kind != req.Kind {
			continue
		}
		pools = append(pools, s.String())
		if req.Zone != "" && !a.inZone(s, req.Zone) {
			continue
		}
		zoned = append(zoned, s.String())
		if !a.reachable(s) {
			continue
		}
		for _, ip := range s.ServiceIPs() {
			if _, taken := a.byIP[ip]; !taken {
				a.Release(key)
				a.byIP[ip], a.byKey[key] = key, ip
				return ip, nil
			}
		}
	}
	if len(pools) == 0 {
		return netip.Addr{}, &AllocError{ReasonNoPool, fmt.Sprintf("no portable %s subnet is configured: start the server with --portable-%s-subnet CIDR, or set annotation %s to the other type",
			req.Kind, req.Kind, lbpool.AnnotationIPType)}
	}
	if len(zoned) == 0 {
		return netip.Addr{}, &AllocError{ReasonNoZone, fmt.Sprintf("no portable %s subnet serves zone %q (annotation %s); the %s subnets serve %s: pick one of those zones, or add a subnet with --portable-%s-subnet CIDR@%s",
			req.Kind, req.Zone, lbpool.AnnotationZone, req.Kind, a.zonesOf(req.Kind), req.Kind, req.Zone)}
	}
	if n := a.reachableCount(req.Kind, req.Zone); n == 0 {
		return netip.Addr{}, &AllocError{ReasonUnreachable, fmt.Sprintf("no node is attached to the portable %s subnet(s) %s, so none could answer for its IPs: start a node whose %s interface is on that network (%s), or name the subnet's VLAN (CIDR@vlan=VLAN) as in the nodes' %s labels",
			req.Kind, strings.Join(zoned, ", "), req.Kind, sideFlag(req.Kind), req.Kind.Side().VLANLabel())}
	}
	return netip.Addr{}, &AllocError{ReasonExhausted, fmt.Sprintf("the %s LoadBalancer pool is exhausted (%s: all %d service IPs in use); the service stays Pending until one is freed: delete an unused LoadBalancer service or add a subnet with --portable-%s-subnet and restart the server",
		req.Kind, strings.Join(pools, ", "), a.capacity(req.Kind), req.Kind)}
}

func (a *Allocator) allocateIP(key string, req Request) (netip.Addr, error) {
	ip := req.IP
	s, inSubnet := lbpool.Find(a.subnets, ip)
	kind := req.Kind
	if !inSubnet {
		return netip.Addr{}, &AllocError{ReasonNotInPool, fmt.Sprintf("requested IP %s is outside every portable subnet (%s); ask for a free one: %s",
			ip, a.subnetList(), a.choices(kind))}
	}
	if req.Zone != "" && !a.inZone(s, req.Zone) {
		return netip.Addr{}, &AllocError{ReasonNoZone, fmt.Sprintf("requested IP %s is in subnet %s, which does not serve zone %q (annotation %s): ask for an IP of that zone or drop the annotation",
			ip, s.Prefix, req.Zone, lbpool.AnnotationZone)}
	}
	if req.KindSet && s.Kind != req.Kind {
		return netip.Addr{}, &AllocError{ReasonWrongPool, fmt.Sprintf("requested IP %s is in the %s subnet %s but the service asks for a %s IP (%s); ask for a free %s IP: %s, or change the annotation",
			ip, s.Kind, s.Prefix, req.Kind, lbpool.AnnotationIPType, req.Kind, a.choices(req.Kind))}
	}
	kind = s.Kind
	if !s.IsServiceIP(ip) && (!req.ALB || ip != s.ALBIP()) {
		what := "reserved for network functions"
		if ip == s.ALBIP() {
			what = "kept for the subnet's ALB"
		}
		return netip.Addr{}, &AllocError{ReasonReserved, fmt.Sprintf("requested IP %s is %s in %s; ask for a free one: %s", ip, what, s.Prefix, a.choices(kind))}
	}
	if owner, ok := a.byIP[ip]; ok && owner != key {
		return netip.Addr{}, &AllocError{ReasonTaken, fmt.Sprintf("requested IP %s is already used by service %s; ask for a free one: %s", ip, owner, a.choices(kind))}
	}
	a.Release(key)
	a.byIP[ip], a.byKey[key] = key, ip
	return ip, nil
}

// Release frees key's IP; it reports whether one was held.
func (a *Allocator) Release(key string) bool {
	ip, ok := a.byKey[key]
	if ok {
		delete(a.byKey, key)
		delete(a.byIP, ip)
	}
	return ok
}

// Free lists the free service IPs of a kind.
func (a *Allocator) Free(kind lbpool.Kind) []netip.Addr {
	var out []netip.Addr
	for _, s := range a.subnets {
		if s.Kind != kind {
			continue
		}
		for _, ip := range s.ServiceIPs() {
			if _, taken := a.byIP[ip]; !taken {
				out = append(out, ip)
			}
		}
	}
	return out
}

func (a *Allocator) capacity(kind lbpool.Kind) int {
	n := 0
	for _, s := range a.subnets {
		if s.Kind == kind {
			n += len(s.ServiceIPs())
		}
	}
	return n
}

func (a *Allocator) serviceSubnet(ip netip.Addr) (lbpool.Subnet, bool) {
	s, ok := lbpool.Find(a.subnets, ip)
	if !ok || !s.IsServiceIP(ip) {
		return lbpool.Subnet{}, false
	}
	return s, true
}

// choices lists up to maxChoicesInReason free IPs of kind for messages.
func (a *Allocator) choices(kind lbpool.Kind) string {
	free := a.Free(kind)
	if len(free) == 0 {
		return fmt.Sprintf("none, the %s pool is exhausted", kind)
	}
	var parts []string
	for i, ip := range free {
		if i == maxChoicesInReason {
			parts = append(parts, fmt.Sprintf("and %d more", len(free)-i))
			break
		}
		parts = append(parts, ip.String())
	}
	return strings.Join(parts, ", ")
}

func (a *Allocator) subnetList() string {
	if len(a.subnets) == 0 {
		return "none configured"
	}
	parts := make([]string, len(a.subnets))
	for i, s := range a.subnets {
		parts[i] = string(s.Kind) + " " + s.Prefix.String()
	}
	return strings.Join(parts, ", ")
}
