package config

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/spf13/pflag"

	"github.com/iks-dev/iks/internal/topology"
)

// TopologyFlags place a node in the IKS network model: its public side
// (absent: a private-only worker) and its zone. The private side is the
// interface of --node-ip, which carries all cluster traffic.
type TopologyFlags struct {
	PublicIP        string
	PublicInterface string
	Zone            string
}

// AddFlags registers the topology flags on fs.
func (f *TopologyFlags) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&f.PublicIP, "public-ip", "", "IPv4 address of this node's public interface (default: none, a private-only worker; may equal --node-ip when one interface serves both sides)")
	fs.StringVar(&f.PublicInterface, "public-interface", "", "interface of this node's public side (its first IPv4 address is the public IP)")
	fs.StringVar(&f.Zone, "zone", topology.DefaultZone, "zone of this node (label topology.kubernetes.io/zone); portable subnets and LoadBalancer IPs follow zones")
}

// ifaceEnv is the optional Env part that resolves interfaces by name.
type ifaceEnv interface {
	InterfaceAddrs(name string) ([]netip.Addr, error)
}

// InterfaceAddrs implements ifaceEnv: the IPv4 addresses of an interface.
func (HostEnv) InterfaceAddrs(name string) ([]netip.Addr, error) {
	ifc, err := net.InterfaceByName(name)
	if err != nil {
		return nil, err
	}
	addrs, err := ifc.Addrs()
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(ipn.IP); ok && ip.Unmap().Is4() {
				out = append(out, ip.Unmap())
			}
		}
	}
	return out, nil
}

// validate resolves the public IP and the zone; avoid are the ranges the
// public IP must not lie in (pods, services).
func (f *TopologyFlags) validate(bad func(string, ...any), env Env, local []netip.Addr, avoid ...netip.Prefix) (netip.Addr, string) {
	zone := f.Zone
	if zone == "" {
		zone = topology.DefaultZone
	}
	if problem := topology.ValidZone(zone); problem != "" {
		bad("--zone %q is not a valid label value (%s): use letters, digits, '-', '_' or '.', for example dal10", f.Zone, problem)
	}
	var pub netip.Addr
	if f.PublicIP != "" {
		ip, err := netip.ParseAddr(f.PublicIP)
		switch {
		case err != nil || !ip.Is4() || !ip.IsGlobalUnicast():
			bad("--public-ip %q is not a usable IPv4 address (for example 169.61.10.5)", f.PublicIP)
		case !contains(local, ip):
			bad("--public-ip %s is not an address of this host's interfaces: use one of %s, or leave it out for a private-only worker", ip, list(local))
		default:
			pub = ip
		}
	}
	if f.PublicInterface != "" {
		ie, ok := env.(ifaceEnv)
		var addrs []netip.Addr
		var err error
		if ok {
			addrs, err = ie.InterfaceAddrs(f.PublicInterface)
		} else {
			err = fmt.Errorf("interfaces cannot be listed here")
		}
		switch {
		case err != nil:
			bad("--public-interface %q: %v; name an interface of this host (see `ip -4 addr`)", f.PublicInterface, err)
		case len(addrs) == 0:
			bad("--public-interface %q has no IPv4 address: give it one, or pass --public-ip", f.PublicInterface)
		case pub.IsValid() && !contains(addrs, pub):
			bad("--public-ip %s is not on --public-interface %s (it has %s): pass only one of them", pub, f.PublicInterface, list(addrs))
		case !pub.IsValid() && f.PublicIP == "":
			pub = addrs[0]
		}
	}
	for _, p := range avoid {
		if pub.IsValid() && p.IsValid() && p.Contains(pub) {
			bad("public IP %s lies inside %s, which iks routes to pods or services; choose another public address", pub, p)
		}
	}
	return pub, zone
}
