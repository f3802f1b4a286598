package main

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/iks-dev/iks/internal/vpnconn"
)

func TestCharonConfLogLevels(t *testing.T) {
	spec := vpnconn.Spec{Remote: vpnconn.Remote{Subnet: "10.91.152.128/26"}, Preshared: vpnconn.Preshared{SecretName: "psk"},
		StrongswanLogging: "default = 0\nike = 3"}
	p, err := vpnconn.Validate("c", spec, vpnconn.Cluster{PodCIDR: netip.MustParsePrefix("172.30.0.0/16")})
	if err != nil {
		t.Fatal(err)
	}
	conf := charonConf("/run/x", vpnconn.DataplaneLibipsec, p)
	want := "    stderr {\n      path = /dev/stderr\n      default = 0\n      ike = 3\n      ike_name = yes\n    }"
	if !strings.Contains(conf, want) {
		t.Errorf("strongswan.conf lacks\n%s\nin\n%s", want, conf)
	}
	if !strings.Contains(conf, "kernel-libipsec kernel-netlink") || !strings.Contains(conf, "socket = unix:///run/x/charon.vici") {
		t.Errorf("strongswan.conf:\n%s", conf)
	}
}
