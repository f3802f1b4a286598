package netapi

import (
	"net/netip"
	"strings"
	"testing"
)

func TestBlockNameRoundTrip(t *testing.T) {
	for _, c := range []struct{ cidr, name string }{
		{"172.30.0.64/26", "172-30-0-64-26"},
		{"10.0.0.0/20", "10-0-0-0-20"},
		{"172.30.255.224/27", "172-30-255-224-27"},
	} {
		p := netip.MustParsePrefix(c.cidr)
		if got := BlockName(p); got != c.name {
			t.Errorf("BlockName(%s) = %q, want %q", c.cidr, got, c.name)
		}
		back, err := ParseBlockName(c.name)
		if err != nil || back != p {
			t.Errorf("ParseBlockName(%q) = %s, %v; want %s", c.name, back, err, p)
		}
	}
	for _, bad := range []string{"", "172-30-0-64", "172-30-0-65-26", "a-b-c-d-26", "172-30-0-064-26"} {
		if _, err := ParseBlockName(bad); err == nil {
			t.Errorf("ParseBlockName(%q) accepted", bad)
		}
	}
}

func TestBlocksClaimOrder(t *testing.T) {
	var got []string
	for b := range Blocks(netip.MustParsePrefix("172.30.0.0/24"), 26) {
		got = append(got, b.String())
	}
	want := "172.30.0.0/26 172.30.0.64/26 172.30.0.128/26 172.30.0.192/26"
	if strings.Join(got, " ") != want {
		t.Errorf("Blocks = %v, want %s", got, want)
	}
	if n := BlockCount(netip.MustParsePrefix("172.30.0.0/16"), 26); n != 1024 {
		t.Errorf("BlockCount /16 in /26 = %d, want 1024", n)
	}
	n := 0
	var last netip.Prefix
	for b := range Blocks(netip.MustParsePrefix("172.30.0.0/16"), 27) {
		n++
		last = b
	}
	if n != 2048 || last.String() != "172.30.255.224/27" {
		t.Errorf("Blocks /16 by /27: %d blocks, last %s", n, last)
	}
}

func TestBlockCapacity(t *testing.T) {
	for size, want := range map[int]int{26: 62, 27: 30, 30: 2, 20: 4094, 31: 0} {
		if got := BlockCapacity(size); got != want {
			t.Errorf("BlockCapacity(/%d) = %d, want %d", size, got, want)
		}
	}
}

func TestValidateBlockSize(t *testing.T) {
	r := netip.MustParsePrefix("172.30.0.0/16")
	for _, ok := range []int{20, 26, 27, 30} {
		if err := ValidateBlockSize(r, ok); err != nil {
			t.Errorf("/%d: %v", ok, err)
		}
	}
	for size, msg := range map[int]string{19: "between /20 and /30", 31: "between /20 and /30", 0: "out of range"} {
		if err := ValidateBlockSize(r, size); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("/%d: error %v, want one mentioning %q", size, err, msg)
		}
	}
	if err := ValidateBlockSize(netip.MustParsePrefix("10.0.0.0/24"), 22); err == nil || !strings.Contains(err.Error(), "does not fit") {
		t.Errorf("/22 in a /24: %v", err)
	}
}

func TestClusterNetworkConfigMap(t *testing.T) {
	c := ClusterNetwork{PodCIDR: netip.MustParsePrefix("172.30.0.0/16"), ServiceCIDR: netip.MustParsePrefix("172.21.0.0/16"),
		ClusterDomain: "cluster.local", BlockSize: 27}
	back, err := ClusterNetworkFromConfigMap(c.ConfigMap())
	if err != nil || back != c {
		t.Fatalf("round trip = %+v, %v; want %+v", back, err, c)
	}
	cm := c.ConfigMap()
	cm.Data["blockSize"] = "14"
	if _, err := ClusterNetworkFromConfigMap(cm); err == nil || !strings.Contains(err.Error(), "iks-cluster-network") {
		t.Errorf("bad block size accepted or error does not name the ConfigMap: %v", err)
	}
	cm.Data["podCIDR"] = "nope"
	if _, err := ClusterNetworkFromConfigMap(cm); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("bad pod range: %v", err)
	}
	path := t.TempDir() + "/cn.json"
	if err := c.WriteCache(path); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadCache(path); err != nil || got != c {
		t.Errorf("ReadCache = %+v, %v", got, err)
	}
}

func TestIPAMBlockObject(t *testing.T) {
	b := NewIPAMBlock(netip.MustParsePrefix("172.30.0.64/26"), "n1", "uid-1")
	if b.Name != "172-30-0-64-26" || !b.OwnedBy("n1", "uid-1") || b.OwnedBy("n1", "uid-2") {
		t.Errorf("block %+v", b)
	}
	u, err := b.ToUnstructured()
	if err != nil {
		t.Fatal(err)
	}
	if u.GetKind() != IPAMBlockKind || u.GetAPIVersion() != "network.iks.io/v1" {
		t.Errorf("kind/apiVersion = %s %s", u.GetKind(), u.GetAPIVersion())
	}
	back, err := FromUnstructured(u)
	if err != nil || back.Spec != b.Spec {
		t.Errorf("round trip %+v, %v", back, err)
	}
	if p, err := back.Prefix(); err != nil || p.String() != "172.30.0.64/26" {
		t.Errorf("Prefix = %s, %v", p, err)
	}
}
