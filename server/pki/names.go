package pki

import (
	"fmt"
	"net"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// sans is an ordered, duplicate-free set of subject alternative names.
type sans struct {
	dns []string
	ips []net.IP
}

// addName adds a host name, or an IP when name is an IP literal (a node may
// be named after its address).
func (s *sans) addName(name string) {
	if ip := net.ParseIP(name); ip != nil {
		s.addIP(ip)
		return
	}
	name = strings.ToLower(name)
	if !slices.Contains(s.dns, name) {
		s.dns = append(s.dns, name)
	}
}

func (s *sans) addIP(ip net.IP) {
	if ip == nil || slices.ContainsFunc(s.ips, ip.Equal) {
		return
	}
	if v4 := ip.To4(); v4 != nil {
		ip = v4
	}
	s.ips = append(s.ips, ip)
}

func (s *sans) addIPs(ips []net.IP) {
	for _, ip := range ips {
		s.addIP(ip)
	}
}

// loopbackSANs returns localhost, 127.0.0.1 and ::1.
func loopbackSANs() sans {
	var s sans
	s.addName("localhost")
	s.addIP(net.IPv4(127, 0, 0, 1))
	s.addIP(net.IPv6loopback)
	return s
}

// apiserverSANs returns every name the kube-apiserver is reached by: the
// in-cluster service names, loopback, the node's name and addresses, the
// kubernetes service ClusterIP and the user's --tls-san values.
func apiserverSANs(o *normalized) sans {
	var s sans
	for _, n := range []string{"kubernetes", "kubernetes.default", "kubernetes.default.svc",
		"kubernetes.default.svc." + o.clusterDomain, "localhost", o.nodeName} {
		s.addName(n)
	}
	s.addIP(net.IPv4(127, 0, 0, 1))
	s.addIP(net.IPv6loopback)
	s.addIP(o.serviceIP)
	s.addIPs(o.nodeIPs)
	for _, n := range o.extraDNS {
		s.addName(n)
	}
	s.addIPs(o.extraIPs)
	return s
}

// etcdSANs returns the names etcd's client and peer listeners are reached by.
func etcdSANs(o *normalized) sans {
	s := loopbackSANs()
	s.addName(o.nodeName)
	s.addIPs(o.nodeIPs)
	return s
}

// kubeletServingSANs returns the names of a kubelet's serving endpoint.
func kubeletServingSANs(nodeName string, ips []net.IP) sans {
	var s sans
	s.addName(nodeName)
	s.addIPs(ips)
	return s
}

// validateNodeName checks that name is a valid Kubernetes node name (a
// lowercase RFC 1123 subdomain), which also makes it safe in a file name.
func validateNodeName(name string) error {
	if name == "" {
		return fmt.Errorf("node name is empty: set the node name (defaults to the host name)")
	}
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
		return fmt.Errorf("node name %q is invalid: %s; choose a lowercase RFC 1123 name", name, strings.Join(errs, "; "))
	}
	return nil
}

// splitExtraSANs sorts --tls-san values into IPs and DNS names, lowercasing
// and validating the names (a leading "*." wildcard is allowed).
func splitExtraSANs(values []string) (dns []string, ips []net.IP, err error) {
	for _, v := range values {
		v = strings.TrimSpace(v)
		if v == "" {
			return nil, nil, fmt.Errorf("extra SAN is empty: remove the empty --tls-san value")
		}
		if ip := net.ParseIP(v); ip != nil {
			ips = append(ips, ip)
			continue
		}
		name := strings.ToLower(v)
		check := validation.IsDNS1123Subdomain
		if strings.HasPrefix(name, "*.") {
			check = validation.IsWildcardDNS1123Subdomain
		}
		if errs := check(name); len(errs) > 0 {
			return nil, nil, fmt.Errorf("extra SAN %q is neither an IP address nor a valid DNS name: %s; fix the --tls-san value",
				v, strings.Join(errs, "; "))
		}
		dns = append(dns, name)
	}
	return dns, ips, nil
}
