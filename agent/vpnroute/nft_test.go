package vpnroute

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"sigs.k8s.io/knftables"

	"github.com/iks-dev/iks/internal/vpnconn"
)

var cluster = vpnconn.Cluster{PodCIDR: netip.MustParsePrefix("172.30.0.0/16"), ServiceCIDR: netip.MustParsePrefix("172.21.0.0/16")}

func plan(t *testing.T, s vpnconn.Spec) *vpnconn.Plan {
	t.Helper()
	s.Preshared.SecretName = "psk"
	p, err := vpnconn.Validate("c", s, cluster)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func dump(t *testing.T, plans []connPlan) string {
	t.Helper()
	fake := knftables.NewFake(knftables.IPv4Family, Table)
	if err := applyNFT(context.Background(), fake, []netip.Prefix{cluster.PodCIDR, cluster.ServiceCIDR}, plans, netip.MustParseAddr("10.0.0.5")); err != nil {
		t.Fatal(err)
	}
	return fake.Dump()
}

func mustContain(t *testing.T, dump string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(dump, w) {
			t.Errorf("missing %q in:\n%s", w, dump)
		}
	}
}

func TestRulesEveryNodeKeepsPodSource(t *testing.T) {
	p := plan(t, vpnconn.Spec{Remote: vpnconn.Remote{Subnet: "10.91.152.128/26"}})
	d := dump(t, []connPlan{{Plan: p, Role: RoleVia}})
	mustContain(t, d,
		"add element ip iks-vpn vpn-remote { 10.91.152.128/26 }",
		"ip saddr { 172.30.0.0/16, 172.21.0.0/16 } ip daddr @vpn-remote snat to ip saddr",
		"tcp option maxseg size set rt mtu")
	if strings.Contains(d, "prefix to") {
		t.Errorf("a non-gateway node got NAT rules:\n%s", d)
	}
}

func TestRulesGatewayNAT(t *testing.T) {
	p := plan(t, vpnconn.Spec{
		Local:           vpnconn.Local{Subnet: "10.10.10.0/24"},
		LocalSubnetNAT:  "172.30.0.0/24=10.10.10.0/24",
		Remote:          vpnconn.Remote{Subnet: "172.30.5.0/24"},
		RemoteSubnetNAT: "172.30.5.0/24=10.200.5.0/24",
	})
	d := dump(t, []connPlan{{Plan: p, Role: RoleGateway}})
	mustContain(t, d,
		// pods reach the remote's real subnet at the mapped one
		"ip daddr 10.200.5.0/24 dnat ip prefix to ip daddr map { 10.200.5.0/24 : 172.30.5.0/24 }",
		"ip saddr 172.30.5.0/24 ip daddr { 172.30.0.0/16, 172.21.0.0/16 } snat ip prefix to ip saddr map { 172.30.5.0/24 : 10.200.5.0/24 }",
		// the remote sees cluster 172.30.0.0/24 as 10.10.10.0/24
		"ip saddr 172.30.0.0/24 ip daddr { 172.30.5.0/24 } snat ip prefix to ip saddr map { 172.30.0.0/24 : 10.10.10.0/24 }",
		"ip saddr { 172.30.5.0/24 } ip daddr 10.10.10.0/24 dnat ip prefix to ip daddr map { 10.10.10.0/24 : 172.30.0.0/24 }",
		"10.200.5.0/24", "172.30.5.0/24")
	// The NETMAP rule comes before the rule keeping sources.
	if strings.Index(d, "snat ip prefix to ip saddr map { 172.30.0.0/24") > strings.Index(d, "@vpn-remote snat to ip saddr") {
		t.Errorf("NAT after the keep rule:\n%s", d)
	}
}

func TestRulesSingleSource(t *testing.T) {
	p := plan(t, vpnconn.Spec{Local: vpnconn.Local{Subnet: "192.168.50.7/32"}, EnableSingleSourceIP: true,
		Remote: vpnconn.Remote{Subnet: "10.91.152.128/26"}})
	mustContain(t, dump(t, []connPlan{{Plan: p, Role: RoleGateway}}),
		"ip saddr { 172.30.0.0/16, 172.21.0.0/16 } ip daddr { 10.91.152.128/26 } snat to 192.168.50.7")
	if d := dump(t, []connPlan{{Plan: p, Role: RoleDown}}); strings.Contains(d, "192.168.50.7") {
		t.Errorf("single source applied off the gateway:\n%s", d)
	}
}

func TestRoleOf(t *testing.T) {
	c := &vpnconn.Conn{Name: "c"}
	if roleOf(c, "n1") != RoleDown {
		t.Error("no status: want down (blackhole)")
	}
	c.Status.Gateway = vpnconn.GatewayStatus{Node: "n2", NodeIP: "192.0.2.2"}
	if roleOf(c, "n2") != RoleGateway {
		t.Error("gateway node")
	}
	if roleOf(c, "n1") != RoleDown {
		t.Error("not established: want down")
	}
	c.Status.Conditions = append(c.Status.Conditions, condTrue(vpnconn.ConditionEstablished))
	if roleOf(c, "n1") != RoleVia {
		t.Error("established: want via the gateway")
	}
}

func TestRulesPodSNAT(t *testing.T) {
	// local.subnet leaves the pods out: auto SNATs them to the gateway
	// node (10.0.0.5 in dump), before the rule that keeps sources.
	p := plan(t, vpnconn.Spec{Local: vpnconn.Local{Subnet: "10.0.0.0/24"}, Remote: vpnconn.Remote{Subnet: "10.91.152.128/26"}})
	d := dump(t, []connPlan{{Plan: p, Role: RoleGateway}})
	const snat = "ip saddr 172.30.0.0/16 ip daddr { 10.91.152.128/26 } snat to 10.0.0.5"
	mustContain(t, d, snat)
	if strings.Index(d, snat) > strings.Index(d, "@vpn-remote snat to ip saddr") {
		t.Errorf("pod SNAT after the keep rule:\n%s", d)
	}
	if d := dump(t, []connPlan{{Plan: p, Role: RoleVia}}); strings.Contains(d, "snat to 10.0.0.5") {
		t.Errorf("a node that is not the gateway SNATs pods:\n%s", d)
	}
	off := plan(t, vpnconn.Spec{Local: vpnconn.Local{Subnet: "10.0.0.0/24"}, EnablePodSNAT: "false", Remote: vpnconn.Remote{Subnet: "10.91.152.128/26"}})
	if d := dump(t, []connPlan{{Plan: off, Role: RoleGateway}}); strings.Contains(d, "snat to 10.0.0.5") {
		t.Errorf("enablePodSNAT false SNATs pods:\n%s", d)
	}
}

func TestRulesNonCluster(t *testing.T) {
	p := plan(t, vpnconn.Spec{Local: vpnconn.Local{Subnet: "172.30.0.0/16,192.168.60.0/24"}, LocalNonClusterSubnet: "192.168.60.0/24",
		Remote: vpnconn.Remote{Subnet: "10.91.152.128/26"}})
	const masq = "ip saddr { 10.91.152.128/26 } ip daddr { 192.168.60.0/24 } masquerade"
	mustContain(t, dump(t, []connPlan{{Plan: p, Role: RoleGateway}}), masq)
	if d := dump(t, []connPlan{{Plan: p, Role: RoleVia}}); strings.Contains(d, "masquerade") {
		t.Errorf("a node that is not the gateway masquerades:\n%s", d)
	}
}
