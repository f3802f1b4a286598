package lbpool

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}

func TestSplit29And28(t *testing.T) {
	s, err := Parse(Public, "--portable-public-subnet", "10.95.1.64/29")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(s.Reserved()), fmt.Sprint(addrs("10.95.1.64", "10.95.1.65", "10.95.1.66")); got != want {
		t.Errorf("reserved %s, want %s", got, want)
	}
	if s.ALBIP() != netip.MustParseAddr("10.95.1.67") {
		t.Errorf("ALB %s, want 10.95.1.67", s.ALBIP())
	}
	if got, want := fmt.Sprint(s.ServiceIPs()), fmt.Sprint(addrs("10.95.1.68", "10.95.1.69", "10.95.1.70", "10.95.1.71")); got != want {
		t.Errorf("/29 service IPs %s, want %s", got, want)
	}
	s28, err := Parse(Private, "--portable-private-subnet", "10.0.0.16/28@vlan=1234")
	if err != nil {
		t.Fatal(err)
	}
	ips := s28.ServiceIPs()
	if len(ips) != 12 || ips[0] != netip.MustParseAddr("10.0.0.20") || ips[11] != netip.MustParseAddr("10.0.0.31") {
		t.Errorf("/28 service IPs %v, want 12 from 10.0.0.20 to 10.0.0.31", ips)
	}
	if s28.VLAN != "1234" || s28.Zone != "" || s28.String() != "10.0.0.16/28@vlan=1234" {
		t.Errorf("VLAN not kept: %+v", s28)
	}
	if s28.IsServiceIP(netip.MustParseAddr("10.0.0.19")) || !s28.IsServiceIP(netip.MustParseAddr("10.0.0.20")) {
		t.Error("IsServiceIP disagrees with the split")
	}
}

func TestParseRefusesBadValues(t *testing.T) {
	for v, want := range map[string]string{
		"10.0.0.0/30":              "too small",
		"10.0.0.1/29":              "did you mean 10.0.0.0/29",
		"nonsense":                 "is not CIDR[@ZONE][,vlan=VLAN]",
		"fd00::/64":                "only IPv4",
		"10.0.0.0/8":               "too large",
		"10.0.0.0/29@":             "is not a label value",
		"10.0.0.0/29@a b!":         "is not a label value",
		"10.0.0.0/29@vlan=":        "must be a node label value",
		"10.0.0.0/29@dal10,size=3": "is not understood",
		"10.0.0.0/29@dal10,dal12":  "is not understood",
	} {
		_, err := Parse(Public, "--portable-public-subnet", v)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), v) {
			t.Errorf("Parse(%q) = %v, want an error naming the value and containing %q", v, err, want)
		}
	}
}

func TestValidate(t *testing.T) {
	pub, _ := Parse(Public, "", "10.1.0.0/28")
	priv, _ := Parse(Private, "", "10.1.0.8/29")
	inPods, _ := Parse(Public, "", "172.30.5.0/29")
	avoid := []Range{{"--cluster-cidr", netip.MustParsePrefix("172.30.0.0/16")}, {"--service-cidr", netip.MustParsePrefix("172.21.0.0/16")}}
	errs := Validate([]Subnet{pub, priv, inPods}, avoid, netip.MustParseAddr("10.1.0.3"))
	joined := fmt.Sprint(errs)
	for _, want := range []string{"10.1.0.0/28 (public) and 10.1.0.8/29 (private) overlap", "overlaps --cluster-cidr 172.30.0.0/16", "contains this node's IP 10.1.0.3"} {
		if !strings.Contains(joined, want) {
			t.Errorf("errors %q lack %q", joined, want)
		}
	}
	ok, _ := Parse(Public, "", "10.2.0.0/29")
	if errs := Validate([]Subnet{ok}, avoid, netip.MustParseAddr("10.1.0.3")); len(errs) != 0 {
		t.Errorf("valid subnet refused: %v", errs)
	}
}

func TestConfigMapRoundTrip(t *testing.T) {
	a, _ := Parse(Public, "", "10.95.1.64/29@11")
	b, _ := Parse(Private, "", "10.95.1.80/29")
	data, err := Encode([]Subnet{a, b})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(data, `"albIP": "10.95.1.67"`) {
		t.Errorf("published data lacks the ALB IP:\n%s", data)
	}
	got, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != a || got[1] != b {
		t.Errorf("round trip %+v, want %+v %+v", got, a, b)
	}
	if _, err := Decode(`[{"type":"weird","cidr":"10.0.0.0/29"}]`); err == nil {
		t.Error("bad kind decoded")
	}
}

func TestParseKindAndLease(t *testing.T) {
	if k, err := ParseKind(""); err != nil || k != Public {
		t.Errorf("default kind %q %v", k, err)
	}
	if k, err := ParseKind("Private"); err != nil || k != Private {
		t.Errorf("private kind %q %v", k, err)
	}
	if _, err := ParseKind("internal"); err == nil || !strings.Contains(err.Error(), "internal") {
		t.Errorf("bad kind accepted: %v", err)
	}
	if n := LeaseName(netip.MustParseAddr("10.95.1.68")); n != "ip-10-95-1-68" {
		t.Errorf("lease name %q", n)
	}
}
