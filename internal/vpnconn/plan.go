package vpnconn

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
)

// Cluster is the address plan a connection is checked against.
type Cluster struct {
	PodCIDR, ServiceCIDR netip.Prefix
}

// NATPair maps one subnet onto another of the same size (NETMAP).
type NATPair struct {
	From, To netip.Prefix
}

func (p NATPair) String() string { return p.From.String() + "=" + p.To.String() }

// Plan is a validated connection with every default applied: what the
// gateway loads into charon and what the agents route and NAT.
type Plan struct {
	Name        string
	Auto        string // add | start
	Version     int    // 0 any, 1, 2
	IKE, ESP    []string
	IKELifetime string
	Lifetime    string
	// Actions are closeaction, dpdaction, keyingtries and the rekey
	// times from the lifetimes and margintime (actions.go).
	Actions Actions
	// Logging are charon's log levels (strongswanLogging).
	Logging  []LogLevel
	LocalID  string
	RemoteID string
	Gateway  string // remote address or %any
	// LocalTS and RemoteTS are the traffic selectors (what the remote
	// sees of the cluster, and the remote's real subnets).
	LocalTS, RemoteTS []netip.Prefix
	// Routed is what every node routes to the gateway: the remote
	// subnets, with remoteSubnetNAT's mapped ranges in place of the real.
	Routed    []netip.Prefix
	LocalNAT  []NATPair // cluster orig → mapped (inside LocalTS)
	RemoteNAT []NATPair // remote real → mapped (as the cluster sees it)
	// SingleSource, when valid, is the one address all cluster traffic to
	// the remote takes (enableSingleSourceIP).
	SingleSource netip.Addr
	// PodSNAT (enablePodSNAT): traffic from PodSNATFrom (the pod range)
	// to the remote takes the gateway node's address.
	PodSNAT     bool
	PodSNATFrom netip.Prefix
	// NonCluster (localNonClusterSubnet): local subnets outside the
	// cluster; the gateway masquerades the remote's traffic to them.
	NonCluster []netip.Prefix
	PingIP     netip.Addr
	SecretName string
	SecretKey  string
	// Auth is AuthPSK or AuthPubkey; CertSecret names the certificate
	// Secret for AuthPubkey.
	Auth       string
	CertSecret string
	// LoadBalancerIP (invalid: none) is the portable IP of the
	// connection's Service; with ConnectUsingLB charon connects from it.
	LoadBalancerIP netip.Addr
	ConnectUsingLB bool
	// ZoneLB (zoneLoadBalancer) is each zone's load balancer IP; the
	// gateway takes its zone's as LoadBalancerIP when it starts.
	ZoneLB map[string]netip.Addr
	// NodeSelector is where the gateway may run: spec.nodeSelector and
	// zoneSelector's zone label.
	NodeSelector map[string]string
	// RouteZone (zoneSpecificRoutes): only nodes of this zone route to
	// the gateway; the others blackhole the remote subnets.
	RouteZone string
	// ClusterRanges are the pod and service ranges (sources kept as they
	// are toward the remote unless NATed).
	ClusterRanges []netip.Prefix
}

var (
	proposalRE = regexp.MustCompile(`^[a-z0-9_]+(-[a-z0-9_]+)*$`)
	hostRE     = regexp.MustCompile(`^[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?$`)
)

// Validate checks spec against the cluster's address plan and returns
// the plan, or an error listing every problem with its fix.
func Validate(name string, spec Spec, c Cluster) (*Plan, error) {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	p := &Plan{Name: name, Auto: or(spec.IPsec.Auto, DefaultAuto), LocalID: or(spec.Local.ID, DefaultLocalID),
		RemoteID: or(spec.Remote.ID, DefaultRemoteID), Gateway: or(spec.Remote.Gateway, DefaultGateway),
		IKELifetime: or(spec.IPsec.IKELifetime, DefaultIKELifetime), Lifetime: or(spec.IPsec.Lifetime, DefaultLifetime),
		SecretName: spec.Preshared.SecretName, SecretKey: or(spec.Preshared.Key, DefaultSecretKey)}
	for _, r := range []netip.Prefix{c.PodCIDR, c.ServiceCIDR} {
		if r.IsValid() {
			p.ClusterRanges = append(p.ClusterRanges, r)
		}
	}
	if p.Auto != "add" && p.Auto != "start" {
		bad("ipsec.auto %q: use add (wait for the remote to connect) or start (connect to remote.gateway)", p.Auto)
	}
	switch kx := or(spec.IPsec.KeyExchange, DefaultKeyExchange); kx {
	case "ikev2":
		p.Version = 2
	case "ikev1":
		p.Version = 1
	case "ike":
		p.Version = 0
	default:
		bad("ipsec.keyexchange %q: use ikev2 (default), ikev1 or ike (either)", kx)
	}
	var err error
	if p.IKE, err = proposals("ipsec.ike", spec.IPsec.IKE); err != nil {
		errs = append(errs, err)
	}
	if p.ESP, err = proposals("ipsec.esp", spec.IPsec.ESP); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, p.checkActions(spec)...)
	errs = append(errs, checkRefused(spec)...)
	errs = append(errs, checkMonitoring(spec)...)
	errs = append(errs, p.checkLogging(spec)...)
	for field, v := range map[string]string{"local.id": p.LocalID, "remote.id": p.RemoteID} {
		if strings.ContainsAny(v, " \t\"'") {
			bad("%s %q: an identity may not contain spaces or quotes", field, v)
		}
	}
	if p.Gateway != "%any" {
		if _, err := netip.ParseAddr(p.Gateway); err != nil && !hostRE.MatchString(p.Gateway) {
			bad("remote.gateway %q: give the remote's IP address or DNS name, or %%any to accept any", p.Gateway)
		}
	} else if p.Auto == "start" {
		bad("ipsec.auto start needs remote.gateway: set the remote's address, or use ipsec.auto add to wait for the remote")
	}
	errs = append(errs, p.checkAuth(spec)...)
	local := spec.Local.Subnet
	if local == "" {
		local = joinPrefixes(p.ClusterRanges)
	}
	if p.LocalTS, err = prefixList("local.subnet", local); err != nil {
		errs = append(errs, err)
	}
	if spec.Remote.Subnet == "" {
		bad("remote.subnet is empty: list the remote site's subnets, e.g. 10.91.152.128/26")
	} else if p.RemoteTS, err = prefixList("remote.subnet", spec.Remote.Subnet); err != nil {
		errs = append(errs, err)
	}
	if p.RemoteNAT, err = natPairs("remoteSubnetNAT", spec.RemoteSubnetNAT); err != nil {
		errs = append(errs, err)
	}
	if p.LocalNAT, err = natPairs("localSubnetNAT", spec.LocalSubnetNAT); err != nil {
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		errs = append(errs, p.checkSubnets(spec)...)
	}
	if len(errs) == 0 {
		errs = append(errs, p.checkPodSNAT(spec, c.PodCIDR)...)
	}
	if len(errs) == 0 {
		errs = append(errs, p.checkNonCluster(spec)...)
	}
	if spec.Remote.PrivateIPtoPing != "" {
		if p.PingIP, err = netip.ParseAddr(spec.Remote.PrivateIPtoPing); err != nil || !p.PingIP.Is4() {
			bad("remote.privateIPtoPing %q: give one IPv4 address of the remote subnet", spec.Remote.PrivateIPtoPing)
		} else if len(p.RemoteTS) > 0 && !containedIn(netip.PrefixFrom(p.PingIP, 32), p.RemoteTS) {
			bad("remote.privateIPtoPing %s is outside remote.subnet %s: give an address of the remote subnet", p.PingIP, joinPrefixes(p.RemoteTS))
		}
	}
	errs = append(errs, p.checkLoadBalancer(spec)...)
	errs = append(errs, p.checkIdentity(spec)...)
	errs = append(errs, p.checkPlacement(spec)...)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return p, nil
}

// checkSubnets checks the subnets against each other, the cluster's
// ranges and the NAT options, and computes Routed and SingleSource.
func (p *Plan) checkSubnets(spec Spec) []error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	mapped := map[netip.Prefix]netip.Prefix{}
	for _, n := range p.RemoteNAT {
		if !containsPrefix(p.RemoteTS, n.From) {
			bad("remoteSubnetNAT %s: %s is not one of remote.subnet (%s): map a remote subnet as listed there", n, n.From, joinPrefixes(p.RemoteTS))
			continue
		}
		mapped[n.From] = n.To
	}
	for _, r := range p.RemoteTS {
		routed := r
		if m, ok := mapped[r]; ok {
			routed = m
		}
		p.Routed = append(p.Routed, routed)
		for _, c := range p.ClusterRanges {
			if routed.Overlaps(c) {
				if routed == r {
					bad("remote.subnet %s overlaps the cluster range %s: map it to a free range with remoteSubnetNAT (%s=MAPPED)", r, c, r)
				} else {
					bad("remoteSubnetNAT maps %s to %s, which overlaps the cluster range %s: map it to a free range", r, routed, c)
				}
			}
		}
		for _, l := range p.LocalTS {
			if r.Overlaps(l) {
				bad("remote.subnet %s overlaps local.subnet %s: the two sides must not share addresses", r, l)
			}
		}
	}
	for _, n := range p.LocalNAT {
		if !containedIn(n.To, p.LocalTS) {
			bad("localSubnetNAT %s: %s is outside local.subnet (%s); add it to local.subnet: the remote only accepts traffic from there", n, n.To, joinPrefixes(p.LocalTS))
		}
	}
	if spec.EnableSingleSourceIP {
		if len(p.LocalTS) != 1 || p.LocalTS[0].Bits() != 32 {
			bad("enableSingleSourceIP needs local.subnet to be one /32 (the address the remote sees), not %q", joinPrefixes(p.LocalTS))
		} else {
			p.SingleSource = p.LocalTS[0].Addr()
		}
		if len(p.LocalNAT) > 0 {
			bad("enableSingleSourceIP and localSubnetNAT exclude each other: keep one")
		}
	}
	return errs
}

// proposals turns ipsec.conf proposals ("aes256-sha256-modp2048!") into
// swanctl's: a trailing "!" means only these, otherwise charon's
// defaults follow.
func proposals(field, v string) ([]string, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil, nil
	}
	strict := strings.HasSuffix(v, "!")
	v = strings.TrimSuffix(v, "!")
	var out []string
	for _, s := range strings.Split(v, ",") {
		s = strings.ToLower(strings.TrimSpace(s))
		if !proposalRE.MatchString(s) {
			return nil, fmt.Errorf("%s %q: %q is not a proposal; write algorithms joined by -, e.g. aes256-sha256-modp2048, and end with ! to allow only those", field, v, s)
		}
		out = append(out, s)
	}
	if !strict {
		out = append(out, "default")
	}
	return out, nil
}

// prefixList parses comma-separated IPv4 CIDRs.
func prefixList(field, v string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range strings.Split(v, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil || !p.Addr().Is4() {
			return nil, fmt.Errorf("%s: %q is not an IPv4 CIDR such as 10.91.152.128/26", field, s)
		}
		if p != p.Masked() {
			return nil, fmt.Errorf("%s: %q has host bits set: write the network, %s", field, s, p.Masked())
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s is empty: list IPv4 CIDRs separated by commas", field)
	}
	return out, nil
}

// natPairs parses "orig=mapped,..." as the chart's NAT options.
func natPairs(field, v string) ([]NATPair, error) {
	var out []NATPair
	for _, s := range strings.Split(v, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		from, to, ok := strings.Cut(s, "=")
		if !ok {
			return nil, fmt.Errorf("%s: %q is not a pair: write ORIGINAL=MAPPED, e.g. 10.171.42.0/24=10.10.10.0/24", field, s)
		}
		fp, err := prefixList(field, from)
		if err != nil {
			return nil, err
		}
		tp, err := prefixList(field, to)
		if err != nil {
			return nil, err
		}
		if len(fp) != 1 || len(tp) != 1 || fp[0].Bits() != tp[0].Bits() {
			return nil, fmt.Errorf("%s: %q maps subnets of different sizes: both sides need the same prefix length", field, s)
		}
		out = append(out, NATPair{From: fp[0], To: tp[0]})
	}
	return out, nil
}

func or(v, def string) string {
	if strings.TrimSpace(v) == "" {
		return def
	}
	return strings.TrimSpace(v)
}

func joinPrefixes(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

// containedIn reports whether p lies inside one of set.
func containedIn(p netip.Prefix, set []netip.Prefix) bool {
	for _, s := range set {
		if s.Bits() <= p.Bits() && s.Contains(p.Addr()) {
			return true
		}
	}
	return false
}

func containsPrefix(set []netip.Prefix, p netip.Prefix) bool {
	for _, s := range set {
		if s == p {
			return true
		}
	}
	return false
}
