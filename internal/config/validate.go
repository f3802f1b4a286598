package config

import (
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/iks-dev/iks/internal/lbpool"
	"github.com/iks-dev/iks/internal/lock"
	"github.com/iks-dev/iks/internal/netapi"
	"github.com/iks-dev/iks/manifests"
)

// Validate checks every value and the host, and returns the immutable
// server configuration. It writes nothing. Errors name the bad value and
// the fix; all problems found are reported together.
func (f *ServerFlags) Validate(env Env) (*Server, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if env.EUID() != 0 {
		return nil, errors.New("iks server must run as root: it manages containers, cgroups and the network (try: sudo iks server)")
	}
	s := &Server{ClusterDomain: f.ClusterDomain, DisableAgent: f.DisableAgent, Debug: f.Debug,
		TLSSANs: f.TLSSANs, AdminKubeconfig: f.WriteKubeconfig, Token: f.Token}

	s.DataDir = filepath.Clean(f.DataDir)
	if !filepath.IsAbs(f.DataDir) {
		bad("--data-dir %q must be an absolute path (for example /var/lib/iks)", f.DataDir)
	} else if err := env.Writable(s.DataDir); err != nil {
		bad("--data-dir %q cannot be used: %v; choose a writable directory on a local disk", f.DataDir, err)
	}

	var cidrErr bool
	s.ClusterCIDR, cidrErr = parseCIDR(bad, "--cluster-cidr", f.ClusterCIDR, 8, 24)
	var svcErr bool
	s.ServiceCIDR, svcErr = parseCIDR(bad, "--service-cidr", f.ServiceCIDR, 12, 28)
	if !cidrErr && !svcErr && s.ClusterCIDR.Overlaps(s.ServiceCIDR) {
		bad("--cluster-cidr %s overlaps --service-cidr %s: pick two disjoint ranges (defaults %s and %s)",
			s.ClusterCIDR, s.ServiceCIDR, DefaultClusterCIDR, DefaultServiceCIDR)
	}

	s.IPAMBlockSize = f.IPAMBlockSize
	if !cidrErr {
		if err := netapi.ValidateBlockSize(s.ClusterCIDR, f.IPAMBlockSize); err != nil {
			bad("--ipam-block-size %d: %v", f.IPAMBlockSize, err)
		}
	}

	if errs := validation.IsDNS1123Subdomain(s.ClusterDomain); len(errs) > 0 {
		bad("--cluster-domain %q is not a valid DNS domain: %s", s.ClusterDomain, strings.Join(errs, "; "))
	}

	local, err := env.LocalAddrs()
	if err != nil {
		bad("cannot list this host's addresses: %v", err)
	}
	s.NodeIP = pickNodeIP(bad, f.NodeIP, local)
	if s.NodeIP.IsValid() {
		for _, p := range []netip.Prefix{s.ClusterCIDR, s.ServiceCIDR} {
			if p.IsValid() && p.Contains(s.NodeIP) {
				bad("--node-ip %s lies inside %s, which iks routes to pods or services; choose other --cluster-cidr/--service-cidr", s.NodeIP, p)
			}
		}
	}
	s.BindAddress, err = netip.ParseAddr(f.BindAddress)
	if err != nil || !s.BindAddress.Is4() {
		bad("--bind-address %q is not an IPv4 address; use 0.0.0.0 to listen on all addresses", f.BindAddress)
	} else if !s.BindAddress.IsUnspecified() && !s.BindAddress.IsLoopback() && !contains(local, s.BindAddress) {
		bad("--bind-address %s is not an address of this host; use 0.0.0.0 or one of %s", s.BindAddress, list(local))
	}

	s.NodeName = f.NodeName
	if s.NodeName == "" {
		h, err := env.Hostname()
		if err != nil {
			bad("cannot read the host name (%v); pass --node-name", err)
		}
		s.NodeName = strings.ToLower(h)
	}
	if errs := validation.IsDNS1123Subdomain(s.NodeName); len(errs) > 0 {
		bad("node name %q is not a valid Kubernetes node name (%s); pass --node-name with lower-case letters, digits, '-' and '.'", s.NodeName, strings.Join(errs, "; "))
	}
	validateNodeExtras(bad, f.NodeLabels, f.KubeletArgs, f.CgroupRoot)
	s.APIServerArgs = componentArgs(bad, "kube-apiserver-arg", f.APIServerArgs)
	s.ControllerManagerArgs = componentArgs(bad, "kube-controller-manager-arg", f.ControllerManagerArgs)
	s.SchedulerArgs = componentArgs(bad, "kube-scheduler-arg", f.SchedulerArgs)
	s.Disable = validateDisable(bad, f.Disable)
	s.PortableSubnets, errs = validatePortable(errs, f, s)
	proxyMode := parseProxyMode(bad, f.ProxyMode)
	f.Network.validate(bad)
	s.Datastore = f.Datastore.validate(bad)
	s.HA = f.HA.validate(bad, f.Token)
	s.HA.SharedDatastore = s.Datastore.External != nil
	checkDatastoreHA(bad, s.Datastore.External, f.HA.ClusterInit)
	publicIP, zone := f.Network.Topology.validate(bad, env, local, s.ClusterCIDR, s.ServiceCIDR)

	if len(errs) == 0 {
		if err := lock.Check(s.Paths().LockFile()); err != nil {
			errs = append(errs, err)
		}
		errs = append(errs, checkPorts(env, s)...)
		errs = append(errs, checkKernel(env, s)...)
		errs = append(errs, checkDataDir(env, s)...)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	s.Agent = Agent{DataDir: s.DataDir, NodeIP: s.NodeIP, NodeName: s.NodeName, NodeLabels: f.NodeLabels,
		KubeletArgs: f.KubeletArgs, CgroupRoot: f.CgroupRoot, ClusterDomain: s.ClusterDomain,
		ServiceCIDR: s.ServiceCIDR, ClusterCIDR: s.ClusterCIDR, ProxyMode: proxyMode, Debug: s.Debug,
		GracefulRestartTime: f.Network.GracefulRestartTime, Encapsulation: f.Network.Encapsulation,
		PublicIP: publicIP, Zone: zone, Host: s.Agent.Host}
	return s, nil
}

// validatePortable parses the portable subnets and checks them against
// each other, the pod and service ranges and the node IP.
func validatePortable(errs []error, f *ServerFlags, s *Server) ([]lbpool.Subnet, []error) {
	var subnets []lbpool.Subnet
	for _, in := range []struct {
		kind   lbpool.Kind
		values []string
	}{{lbpool.Public, f.PortablePublic}, {lbpool.Private, f.PortablePrivate}} {
		for _, v := range in.values {
			sub, err := lbpool.Parse(in.kind, "--portable-"+string(in.kind)+"-subnet", v)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			subnets = append(subnets, sub)
		}
	}
	avoid := []lbpool.Range{{Flag: "--cluster-cidr", Prefix: s.ClusterCIDR}, {Flag: "--service-cidr", Prefix: s.ServiceCIDR}}
	errs = append(errs, lbpool.Validate(subnets, avoid, s.NodeIP)...)
	return subnets, errs
}

// parseCIDR parses an IPv4 network address with a prefix length between
// minBits and maxBits. It reports whether the value was bad.
func parseCIDR(bad func(string, ...any), flag, v string, minBits, maxBits int) (netip.Prefix, bool) {
	p, err := netip.ParsePrefix(v)
	switch {
	case err != nil:
		bad("%s %q is not a CIDR: write it as a network address and length, for example 172.30.0.0/16", flag, v)
	case !p.Addr().Is4():
		bad("%s %q: only IPv4 ranges are supported", flag, v)
	case p.Masked() != p:
		bad("%s %q is not a network address: did you mean %s?", flag, v, p.Masked())
	case p.Bits() < minBits || p.Bits() > maxBits:
		bad("%s %q: the prefix length must be between /%d and /%d", flag, v, minBits, maxBits)
	default:
		return p, false
	}
	return netip.Prefix{}, true
}

func pickNodeIP(bad func(string, ...any), v string, local []netip.Addr) netip.Addr {
	if v == "" {
		if len(local) == 0 {
			bad("no IPv4 address found on this host's interfaces; pass --node-ip")
			return netip.Addr{}
		}
		return local[0]
	}
	ip, err := netip.ParseAddr(v)
	if err != nil || !ip.Is4() || !ip.IsGlobalUnicast() {
		bad("--node-ip %q is not a usable IPv4 address (for example 10.0.0.5)", v)
		return netip.Addr{}
	}
	if !contains(local, ip) {
		bad("--node-ip %s is not an address of this host; use one of %s", ip, list(local))
		return netip.Addr{}
	}
	return ip
}

func contains(as []netip.Addr, a netip.Addr) bool {
	for _, x := range as {
		if x == a {
			return true
		}
	}
	return false
}

func list(as []netip.Addr) string {
	if len(as) == 0 {
		return "(none)"
	}
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}

// validateDisable checks the --disable names against the embedded
// manifests and returns them without duplicates.
func validateDisable(bad func(string, ...any), names []string) []string {
	var out []string
	for _, n := range names {
		n = strings.TrimSpace(n)
		switch {
		case !manifests.Known(n):
			bad("--disable %q is not an add-on iks deploys: use one of %s", n, strings.Join(manifests.Names(), ", "))
		case n == "network-policy":
			bad("--disable network-policy cannot be used: it is the access every node's policy engine needs to read NetworkPolicies, not an optional add-on; remove it from --disable")
		case !slices.Contains(out, n):
			out = append(out, n)
		}
	}
	return out
}

// validateNodeExtras checks the node options servers and agents share.
func validateNodeExtras(bad func(string, ...any), labels, kubeletArgs []string, cgroupRoot string) {
	for _, l := range labels {
		k, v, ok := strings.Cut(l, "=")
		if !ok || len(validation.IsQualifiedName(k)) > 0 || len(validation.IsValidLabelValue(v)) > 0 {
			bad("--node-label %q must be key=value with a valid label key and value (for example env=edge)", l)
		}
	}
	for _, a := range kubeletArgs {
		if k, _, ok := strings.Cut(a, "="); !ok || k == "" || strings.HasPrefix(k, "-") {
			bad("--kubelet-arg %q must be flag=value without dashes (for example max-pods=50)", a)
		}
	}
	if !strings.HasPrefix(cgroupRoot, "/") {
		bad("--cgroup-root %q must be an absolute cgroup path such as / or /iks", cgroupRoot)
	}
}

// componentArgs turns --NAME values (flag=value) into command-line flags
// (--flag=value), refusing any other shape; the component's own flag set
// checks names and values when the server starts, before it writes.
func componentArgs(bad func(string, ...any), name string, values []string) []string {
	var out []string
	for _, a := range values {
		if k, _, ok := strings.Cut(a, "="); !ok || k == "" || strings.HasPrefix(k, "-") {
			bad("--%s %q must be flag=value without dashes (for example audit-log-path=/var/log/iks/audit.log)", name, a)
			continue
		}
		out = append(out, "--"+a)
	}
	return out
}
