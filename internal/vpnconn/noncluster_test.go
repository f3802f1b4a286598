package vpnconn

import (
	"strings"
	"testing"
)

func TestNonCluster(t *testing.T) {
	s := validSpec()
	s.Local.Subnet = "172.30.0.0/16,192.168.60.0/24,192.168.61.0/24"
	s.LocalNonClusterSubnet = "192.168.60.0/24\n192.168.61.128/25"
	p, err := Validate("c", s, testCluster)
	if err != nil {
		t.Fatal(err)
	}
	if got := joinPrefixes(p.NonCluster); got != "192.168.60.0/24,192.168.61.128/25" {
		t.Errorf("NonCluster %s", got)
	}
	if p, err := Validate("c", validSpec(), testCluster); err != nil || len(p.NonCluster) != 0 {
		t.Errorf("unset: %v %v", p.NonCluster, err)
	}
}

func TestNonClusterRefused(t *testing.T) {
	for _, tc := range []struct{ local, nonCluster, want string }{
		{"172.30.0.0/16", "192.168.60.0/24", "localNonClusterSubnet 192.168.60.0/24 is outside local.subnet (172.30.0.0/16): add it to local.subnet"},
		{"172.30.0.0/16", "172.30.8.0/24", "localNonClusterSubnet 172.30.8.0/24 overlaps the cluster range 172.30.0.0/16"},
		{"10.0.0.0/8", "10.91.152.0/24", ""}, // local overlaps remote: refused before
		{"192.168.0.0/16", "192.168.60.1/24", `localNonClusterSubnet: "192.168.60.1/24" has host bits set`},
		{"192.168.0.0/16", "lan", `localNonClusterSubnet: "lan" is not an IPv4 CIDR`},
	} {
		s := validSpec()
		s.Local.Subnet, s.LocalNonClusterSubnet = tc.local, tc.nonCluster
		_, err := Validate("c", s, testCluster)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("local %s nonCluster %s: error %v, want %q", tc.local, tc.nonCluster, err, tc.want)
		}
	}
	// Mapped onto by remoteSubnetNAT: the cluster reaches the remote there.
	s := validSpec()
	s.Local.Subnet = "172.30.0.0/16,192.168.0.0/16"
	s.RemoteSubnetNAT = "10.91.152.128/26=192.168.9.0/26"
	s.LocalNonClusterSubnet = "192.168.9.0/24"
	if _, err := Validate("c", s, testCluster); err == nil || !strings.Contains(err.Error(), "localNonClusterSubnet 192.168.9.0/24 overlaps the remote subnet 192.168.9.0/26") {
		t.Errorf("nonCluster over the mapped remote: %v", err)
	}
}
