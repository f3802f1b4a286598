package vpnconn

import (
	"net/netip"
	"strings"
	"testing"
)

func TestPodSNAT(t *testing.T) {
	c := Cluster{PodCIDR: netip.MustParsePrefix("172.30.0.0/16"), ServiceCIDR: netip.MustParsePrefix("172.21.0.0/16")}
	for _, tc := range []struct {
		name string
		spec Spec
		want bool
		err  string
	}{
		{"default local.subnet holds the pods", Spec{}, false, ""},
		{"the worker subnet only: auto SNATs pods", Spec{Local: Local{Subnet: "10.0.0.0/24"}}, true, ""},
		{"auto with the pods listed", Spec{Local: Local{Subnet: "10.0.0.0/24,172.30.0.0/16"}}, false, ""},
		{"auto off with single source", Spec{Local: Local{Subnet: "10.0.0.9/32"}, EnableSingleSourceIP: true}, false, ""},
		{"auto off with pods mapped", Spec{Local: Local{Subnet: "10.252.0.0/16"}, LocalSubnetNAT: "172.30.0.0/16=10.252.0.0/16"}, false, ""},
		{"false", Spec{Local: Local{Subnet: "10.0.0.0/24"}, EnablePodSNAT: "false"}, false, ""},
		{"true with the pods listed", Spec{EnablePodSNAT: "true"}, true, ""},
		{"true with single source", Spec{Local: Local{Subnet: "10.0.0.9/32"}, EnableSingleSourceIP: true, EnablePodSNAT: "true"}, false, "keep one way"},
		{"a bad value", Spec{EnablePodSNAT: "yes"}, false, `enablePodSNAT "yes": use auto`},
	} {
		tc.spec.Remote.Subnet = "10.91.152.128/26"
		tc.spec.Preshared.SecretName = "psk"
		p, err := Validate("c", tc.spec, c)
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.err)
			}
		case err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case p.PodSNAT != tc.want || (p.PodSNAT && p.PodSNATFrom != c.PodCIDR):
			t.Errorf("%s: PodSNAT %v from %s, want %v from the pod range", tc.name, p.PodSNAT, p.PodSNATFrom, tc.want)
		}
	}
}
