package config

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// HostCheck is one kernel feature or host tool a node uses, as found on
// this host. `iks check-config` prints them all; `iks server` and `iks
// agent` refuse to start when a Required one is Missing and log the
// Fallback of every other missing one.
type HostCheck struct {
	Kind     string // "kernel" or "tool"
	Name     string
	Use      string // what iks uses it for
	Required bool
	// State: Found, Missing or Unknown (the host gives no way to tell;
	// never fatal).
	State  string
	Detail string // how it was found (loaded, built in, a path...) or why missing
	// Fallback is what iks does without it (optional ones); Fix how to
	// get it.
	Fallback string
	Fix      string
}

// Host check states.
const (
	Found   = "found"
	Missing = "missing"
	Unknown = "unknown"
)

// kernelFeature is a kernel module or built-in iks relies on.
type kernelFeature struct {
	name, symbol, use, fallback string
	required                    bool
}

var kernelFeatures = []kernelFeature{
	{name: "veth", symbol: "CONFIG_VETH", required: true, use: "every pod's interface is one end of a veth pair"},
	{name: "nf_conntrack", symbol: "CONFIG_NF_CONNTRACK", required: true, use: "Services (kube-proxy NAT) and NAT outgoing"},
	{name: "nf_nat", symbol: "CONFIG_NF_NAT", required: true, use: "Service DNAT, NAT outgoing, hostPort"},
	{name: "xt_MASQUERADE", symbol: "CONFIG_NETFILTER_XT_TARGET_MASQUERADE", required: true, use: "NAT outgoing (IKS-NAT-OUTGOING) and hostPort SNAT"},
	{name: "xt_comment", symbol: "CONFIG_NETFILTER_XT_MATCH_COMMENT", required: true, use: "iptables rules iks and kube-proxy write carry comments"},
	{name: "nf_tables", symbol: "CONFIG_NF_TABLES", use: "kube-proxy nftables mode; network policy; iptables-nft (Debian's iptables)",
		fallback: "kube-proxy iptables mode with iptables-legacy (needs ip_tables); NetworkPolicies are not enforced"},
	{name: "ip_tables", symbol: "CONFIG_IP_NF_IPTABLES", use: "iptables-legacy",
		fallback: "iptables-nft on nf_tables (Debian's default iptables)"},
	{name: "vxlan", symbol: "CONFIG_VXLAN", use: "pod traffic to nodes on other subnets when IP-in-IP is unavailable",
		fallback: "pods reach only nodes on the same subnet: with neither ipip nor vxlan use --encapsulation Never on one L2 network"},
	{name: "ipip", symbol: "CONFIG_NET_IPIP", use: "IP-in-IP tunnel (iks.tunl) to nodes on other subnets",
		fallback: "VXLAN tunnel (iks.vxlan, MTU uplink-50)"},
}

// hostTool is a program a node runs.
type hostTool struct {
	name, pkg, use, fallback string
	required                 bool
}

var hostTools = []hostTool{
	{name: "nft", pkg: "nftables", use: "kube-proxy nftables mode, NAT outgoing (table ip iks-nat), hostPort (portmap), network policy",
		fallback: "iptables mode (kube-proxy, NAT outgoing and portmap on iptables); NetworkPolicies are not enforced"},
	{name: "iptables", pkg: "iptables", use: "iptables mode: kube-proxy, NAT outgoing, hostPort (portmap)", fallback: "nftables mode (nft)"},
	{name: "iptables-save", pkg: "iptables", use: "iptables mode: kube-proxy, portmap", fallback: "nftables mode (nft)"},
	{name: "iptables-restore", pkg: "iptables", use: "iptables mode: kube-proxy, NAT outgoing chain", fallback: "nftables mode (nft)"},
	{name: "mount", pkg: "mount", required: true, use: "kubelet mounts pod volumes"},
	{name: "umount", pkg: "mount", required: true, use: "kubelet unmounts pod volumes"},
	{name: "modprobe", pkg: "kmod", use: "the iks systemd unit loads overlay and br_netfilter",
		fallback: "the kernel modules must be built in or loaded already"},
}

// NotUsed lists kernel features k3s's check-config shows that iks does not
// need, and why.
const NotUsed = "br_netfilter (pods are routed over veth pairs, not bridged), tun, xfrm/IPsec (no WireGuard or IPsec)"

// CheckHost looks for every kernel feature and host tool a node uses. It
// changes nothing.
func CheckHost(env Env) []HostCheck {
	k := newKernelProbe(env)
	var out []HostCheck
	add := func(c HostCheck) { out = append(out, c) }
	kfix := func(mod string) string {
		return fmt.Sprintf("load it (modprobe %s) or use a kernel built with it", mod)
	}

	fss, err := k.filesystems()
	switch {
	case err != nil:
		add(HostCheck{Kind: "kernel", Name: "overlay", Required: true, State: Unknown, Detail: err.Error()})
	default:
		c := HostCheck{Kind: "kernel", Name: "overlay", Required: true, Use: "containers' root filesystems (containerd overlayfs snapshotter)",
			Fix: "load it with `modprobe overlay` (and add it to /etc/modules)"}
		if fss["overlay"] {
			c.State, c.Detail = Found, "in /proc/filesystems"
		} else {
			c.State, c.Detail = Missing, "not in /proc/filesystems"
		}
		add(c)
		cg := HostCheck{Kind: "kernel", Name: "cgroups", Required: true, Use: "pod and container resource limits (kubelet, runc)",
			Fix: "enable cgroups (CONFIG_CGROUPS) with the cpu, memory and pids controllers"}
		if !fss["cgroup"] && !fss["cgroup2"] {
			cg.State, cg.Detail = Missing, "no cgroup filesystem in /proc/filesystems"
		} else if ctl, err := k.cgroupControllers(); err != nil {
			cg.State, cg.Detail = Unknown, fmt.Sprintf("%s; cannot read the controllers: %v", k.cgroupVersion(), err)
		} else {
			var lack []string
			for _, want := range []string{"cpu", "memory", "pids"} {
				if !ctl[want] {
					lack = append(lack, want)
				}
			}
			if len(lack) > 0 {
				cg.State, cg.Detail = Missing, fmt.Sprintf("%s without the %s controller(s)", k.cgroupVersion(), strings.Join(lack, ", "))
			} else {
				cg.State, cg.Detail = Found, k.cgroupVersion()+", cpu, memory, pids"
			}
		}
		add(cg)
	}

	sec := HostCheck{Kind: "kernel", Name: "seccomp", Required: true, Use: "the RuntimeDefault seccomp profile of every pod sandbox",
		Fix: "use a kernel built with CONFIG_SECCOMP and CONFIG_SECCOMP_FILTER"}
	if st, err := env.ReadFile("/proc/self/status"); err == nil && strings.Contains(string(st), "\nSeccomp:") {
		sec.State, sec.Detail = Found, "Seccomp in /proc/self/status"
	} else {
		s, d := k.module("seccomp", "CONFIG_SECCOMP")
		sec.State, sec.Detail = stateName(s), d
	}
	add(sec)

	for _, f := range kernelFeatures {
		s, d := k.module(f.name, f.symbol)
		c := HostCheck{Kind: "kernel", Name: f.name, Use: f.use, Required: f.required, State: stateName(s), Detail: d,
			Fallback: f.fallback, Fix: kfix(f.name)}
		add(c)
	}
	// Some iptables needs one of the two netfilter back-ends.
	if missing(out, "nf_tables") && missing(out, "ip_tables") {
		add(HostCheck{Kind: "kernel", Name: "nf_tables or ip_tables", Required: true, State: Missing,
			Use: "the iptables rules of NAT outgoing and kube-proxy", Detail: "the kernel has neither netfilter back-end",
			Fix: "load nf_tables (modprobe nf_tables) or ip_tables"})
	}

	for _, t := range hostTools {
		c := HostCheck{Kind: "tool", Name: t.name, Use: t.use, Required: t.required, Fallback: t.fallback,
			Fix: fmt.Sprintf("install it: apt-get install %s (or sudo ./install.sh, which installs the runtime prerequisites)", t.pkg)}
		if p, err := env.LookPath(t.name); err == nil {
			c.State, c.Detail = Found, p
		} else {
			c.State, c.Detail = Missing, "not in PATH"
		}
		add(c)
	}
	// Packet rules need one of the two front-ends.
	if missing(out, "nft") && (missing(out, "iptables") || missing(out, "iptables-restore")) {
		add(HostCheck{Kind: "tool", Name: "nft or iptables", Required: true, State: Missing,
			Use: "kube-proxy, NAT outgoing and hostPort rules", Detail: "neither nft nor iptables/iptables-restore is in PATH",
			Fix: "install one: apt-get install nftables (preferred) or apt-get install iptables (or sudo ./install.sh)"})
	}
	return out
}

func stateName(s featureState) string {
	switch s {
	case stateFound:
		return Found
	case stateMissing:
		return Missing
	}
	return Unknown
}

func missing(cs []HostCheck, name string) bool {
	i := slices.IndexFunc(cs, func(c HostCheck) bool { return c.Name == name })
	return i >= 0 && cs[i].State == Missing
}

// HostErrors returns one error per required check that is missing, naming
// it, what needs it and the fix.
func HostErrors(cs []HostCheck) []error {
	var errs []error
	for _, c := range cs {
		if c.Required && c.State == Missing {
			errs = append(errs, fmt.Errorf("%s %s is missing (%s); iks needs it for %s: %s (`iks check-config` lists every host requirement)",
				c.Kind, c.Name, c.Detail, c.Use, c.Fix))
		}
	}
	return errs
}

// HostFallbacks returns the optional checks that are missing: iks runs
// without them, taking their Fallback.
func HostFallbacks(cs []HostCheck) []HostCheck {
	var out []HostCheck
	for _, c := range cs {
		if !c.Required && c.State == Missing {
			out = append(out, c)
		}
	}
	return out
}

// checkKernel runs the node's host checks (none for a server without
// agent) and keeps them on s for the start-up log.
func checkKernel(env Env, s *Server) []error {
	if s.DisableAgent {
		return nil
	}
	s.Agent.Host = CheckHost(env)
	if len(s.Agent.Host) == 0 {
		return []error{errors.New("no host checks ran")}
	}
	return HostErrors(s.Agent.Host)
}
