package manifests

import (
	"strings"
	"testing"
)

func testValues() Values {
	return Values{ClusterDNS: "172.21.0.10", ClusterDomain: "cluster.local", CoreDNSImage: "iks.local/coredns:1.15.0",
		APIServerHost: "10.0.0.5", APIServerPort: "6443", ClusterCIDR: "172.30.0.0/16"}
}

func TestNames(t *testing.T) {
	if got := strings.Join(Names(), ","); !strings.Contains(got, "coredns") {
		t.Fatalf("Names() = %s, want coredns among them", got)
	}
	if !Known("coredns") || Known("nope") || Known("../manifests") {
		t.Error("Known answers wrongly")
	}
}

func TestRenderCoreDNS(t *testing.T) {
	out, err := Render("coredns", testValues())
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	for _, want := range []string{
		"clusterIP: 172.21.0.10",
		"kubernetes cluster.local in-addr.arpa ip6.arpa",
		"image: iks.local/coredns:1.15.0",
		"forward . /etc/resolv.conf",
		"path: /ready",
		"path: /health",
		`value: "10.0.0.5"`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("rendered coredns manifest lacks %q", want)
		}
	}
	if strings.Contains(s, "replicas:") {
		t.Error("the manifest sets replicas, which the replica controller owns")
	}
}

func TestRenderRefusesMissingValues(t *testing.T) {
	v := testValues()
	v.ClusterDNS = ""
	if _, err := Render("coredns", v); err == nil || !strings.Contains(err.Error(), "ClusterDNS") {
		t.Fatalf("render without ClusterDNS: %v, want an error naming it", err)
	}
	if _, err := Render("nope", testValues()); err == nil || !strings.Contains(err.Error(), "coredns") {
		t.Fatalf("unknown manifest: %v, want an error listing the manifests", err)
	}
}

func TestRenderNetworkPolicy(t *testing.T) {
	out, err := Render("network-policy", testValues())
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	for _, want := range []string{
		"name: globalnetworkpolicies.projectcalico.org",
		"name: networkpolicies.projectcalico.org",
		"name: hostendpoints.projectcalico.org",
		"name: globalnetworksets.projectcalico.org",
		"name: networksets.projectcalico.org",
		"nets: [172.30.0.0/16]",
		"name: allow-all-outbound", "name: allow-bigfix-port", "name: allow-icmp", "name: allow-node-port-dnat",
		"name: allow-sys-mgmt", "name: allow-vrrp", "name: allow-all-private-default",
		"Calico rule: PreDNAT policy cannot have egress rules",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("rendered network-policy manifest lacks %q", want)
		}
	}
	v := testValues()
	v.ClusterCIDR = ""
	if _, err := Render("network-policy", v); err == nil || !strings.Contains(err.Error(), "ClusterCIDR") {
		t.Errorf("render without ClusterCIDR: %v, want an error naming it", err)
	}
}
