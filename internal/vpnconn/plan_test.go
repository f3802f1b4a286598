package vpnconn

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

var testCluster = Cluster{PodCIDR: netip.MustParsePrefix("172.30.0.0/16"), ServiceCIDR: netip.MustParsePrefix("172.21.0.0/16")}

func validSpec() Spec {
	return Spec{Remote: Remote{Subnet: "10.91.152.128/26"}, Preshared: Preshared{SecretName: "psk"}}
}

func TestValidateDefaultsAsTheChart(t *testing.T) {
	p, err := Validate("onprem", validSpec(), testCluster)
	if err != nil {
		t.Fatal(err)
	}
	if p.Auto != "add" || p.Version != 2 || p.LocalID != "ibm-cloud" || p.RemoteID != "on-prem" || p.Gateway != "%any" ||
		p.IKELifetime != "3h" || p.Lifetime != "1h" || p.SecretKey != "psk" {
		t.Errorf("defaults: %+v", p)
	}
	if got := joinPrefixes(p.LocalTS); got != "172.30.0.0/16,172.21.0.0/16" {
		t.Errorf("local.subnet default %s, want the pod and service ranges", got)
	}
	if got := joinPrefixes(p.Routed); got != "10.91.152.128/26" {
		t.Errorf("routed %s", got)
	}
}

func TestValidateRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Spec)
		want string
	}{
		{"bad CIDR", func(s *Spec) { s.Remote.Subnet = "10.0.0.0/33" }, `remote.subnet: "10.0.0.0/33" is not an IPv4 CIDR`},
		{"host bits", func(s *Spec) { s.Remote.Subnet = "10.0.0.1/24" }, "has host bits set: write the network, 10.0.0.0/24"},
		{"no remote subnet", func(s *Spec) { s.Remote.Subnet = "" }, "remote.subnet is empty"},
		{"overlap pods", func(s *Spec) { s.Remote.Subnet = "172.30.5.0/24" }, "overlaps the cluster range 172.30.0.0/16: map it to a free range with remoteSubnetNAT"},
		{"mapped overlaps", func(s *Spec) {
			s.Remote.Subnet = "172.30.5.0/24"
			s.RemoteSubnetNAT = "172.30.5.0/24=172.21.9.0/24"
		}, "overlaps the cluster range 172.21.0.0/16"},
		{"overlap local", func(s *Spec) { s.Local.Subnet = "10.0.0.0/8" }, "overlaps local.subnet 10.0.0.0/8"},
		{"single source not /32", func(s *Spec) { s.EnableSingleSourceIP = true }, "enableSingleSourceIP needs local.subnet to be one /32"},
		{"start without gateway", func(s *Spec) { s.IPsec.Auto = "start" }, "ipsec.auto start needs remote.gateway"},
		{"bad auto", func(s *Spec) { s.IPsec.Auto = "route" }, `ipsec.auto "route"`},
		{"bad keyexchange", func(s *Spec) { s.IPsec.KeyExchange = "ikev3" }, `ipsec.keyexchange "ikev3"`},
		{"bad proposal", func(s *Spec) { s.IPsec.IKE = "aes256 sha256" }, "is not a proposal"},
		{"local NAT outside TS", func(s *Spec) {
			s.Local.Subnet = "10.10.10.0/24"
			s.LocalSubnetNAT = "172.30.1.0/24=10.10.20.0/24"
		}, "10.10.20.0/24 is outside local.subnet"},
		{"NAT sizes", func(s *Spec) { s.LocalSubnetNAT = "172.30.1.0/24=10.10.20.0/25" }, "different sizes"},
		{"NAT pair syntax", func(s *Spec) { s.RemoteSubnetNAT = "10.91.152.128/26" }, "is not a pair"},
		{"remote NAT unknown subnet", func(s *Spec) { s.RemoteSubnetNAT = "10.1.0.0/26=10.2.0.0/26" }, "is not one of remote.subnet"},
		{"no secret", func(s *Spec) { s.Preshared.SecretName = "" }, "preshared.secretName is empty"},
		{"ping outside", func(s *Spec) { s.Remote.PrivateIPtoPing = "10.9.9.9" }, "is outside remote.subnet"},
		{"lifetime", func(s *Spec) { s.IPsec.Lifetime = "one hour" }, `ipsec.lifetime "one hour"`},
		{"gateway", func(s *Spec) { s.Remote.Gateway = "bad host!" }, `remote.gateway "bad host!"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := validSpec()
			tc.mod(&s)
			_, err := Validate("c", s, testCluster)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestValidateNAT(t *testing.T) {
	s := validSpec()
	s.Remote.Subnet = "172.30.5.0/24,10.9.0.0/16"
	s.RemoteSubnetNAT = "172.30.5.0/24=10.200.5.0/24"
	s.Local.Subnet = "10.10.10.0/24"
	s.LocalSubnetNAT = "172.30.0.0/24=10.10.10.0/24"
	p, err := Validate("c", s, testCluster)
	if err != nil {
		t.Fatal(err)
	}
	if got := joinPrefixes(p.Routed); got != "10.200.5.0/24,10.9.0.0/16" {
		t.Errorf("routed %s: the mapped range replaces the real one", got)
	}
	if got := joinPrefixes(p.RemoteTS); got != "172.30.5.0/24,10.9.0.0/16" {
		t.Errorf("remote TS %s: the real subnets", got)
	}
	s = validSpec()
	s.Local.Subnet = "192.168.50.7/32"
	s.EnableSingleSourceIP = true
	if p, err = Validate("c", s, testCluster); err != nil || p.SingleSource != netip.MustParseAddr("192.168.50.7") {
		t.Fatalf("single source: %v %v", p, err)
	}
}

func TestProposals(t *testing.T) {
	got, err := proposals("ipsec.ike", "aes256-sha256-modp2048!")
	if err != nil || !slices.Equal(got, []string{"aes256-sha256-modp2048"}) {
		t.Errorf("strict: %v %v", got, err)
	}
	got, err = proposals("ipsec.esp", "AES128-sha1, aes256-sha256")
	if err != nil || !slices.Equal(got, []string{"aes128-sha1", "aes256-sha256", "default"}) {
		t.Errorf("with defaults: %v %v", got, err)
	}
}
