package config

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/iks-dev/iks/internal/topology"
)

// ifaceFake adds interface lookup to the fake host.
type ifaceFake struct {
	fakeEnv
	ifaces map[string][]netip.Addr
}

func (f ifaceFake) InterfaceAddrs(name string) ([]netip.Addr, error) {
	a, ok := f.ifaces[name]
	if !ok {
		return nil, errNoSuchIface
	}
	return a, nil
}

var errNoSuchIface = &netErr{"no such network interface"}

type netErr struct{ s string }

func (e *netErr) Error() string { return e.s }

func TestTopologyDefaultsToPrivateOnlyInOneZone(t *testing.T) {
	s, err := flags(t).Validate(goodEnv())
	if err != nil {
		t.Fatal(err)
	}
	if s.Agent.PublicIP.IsValid() || s.Agent.Zone != topology.DefaultZone {
		t.Errorf("defaults: public %v zone %q, want none and %q", s.Agent.PublicIP, s.Agent.Zone, topology.DefaultZone)
	}
	j, err := agentFlags(t, "--server", "https://10.0.0.1", "--token", "K10abc::abcdef.0123456789abcdef", "--public-ip", "192.168.1.9", "--zone", "dal10").Validate(goodEnv())
	if err != nil {
		t.Fatal(err)
	}
	if j.PublicIP != netip.MustParseAddr("192.168.1.9") || j.Zone != "dal10" || j.NodeIP != netip.MustParseAddr("10.0.0.5") {
		t.Errorf("agent topology %v %q (node %v)", j.PublicIP, j.Zone, j.NodeIP)
	}
	env := ifaceFake{goodEnv(), map[string][]netip.Addr{"eth1": {netip.MustParseAddr("192.168.1.9")}}}
	s, err = flags(t, "--public-interface", "eth1").Validate(env)
	if err != nil {
		t.Fatal(err)
	}
	if s.Agent.PublicIP != netip.MustParseAddr("192.168.1.9") {
		t.Errorf("--public-interface eth1 gave public IP %v", s.Agent.PublicIP)
	}
}

func TestBadTopologyIsNamedWithAFix(t *testing.T) {
	env := ifaceFake{goodEnv(), map[string][]netip.Addr{"eth1": {netip.MustParseAddr("192.168.1.9")}, "eth2": nil}}
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"--public-ip", "169.61.0.5"}, []string{"--public-ip 169.61.0.5 is not an address of this host", "10.0.0.5, 192.168.1.9", "private-only"}},
		{[]string{"--public-ip", "nope"}, []string{`--public-ip "nope" is not a usable IPv4`}},
		{[]string{"--zone", "dal 10"}, []string{`--zone "dal 10" is not a valid label value`}},
		{[]string{"--zone", ""}, nil}, // empty is the default zone
		{[]string{"--public-interface", "eth9"}, []string{`--public-interface "eth9"`, "no such network interface"}},
		{[]string{"--public-interface", "eth2"}, []string{`--public-interface "eth2" has no IPv4 address`}},
		{[]string{"--public-interface", "eth1", "--public-ip", "10.0.0.5"}, []string{"--public-ip 10.0.0.5 is not on --public-interface eth1"}},
	} {
		_, err := flags(t, c.args...).Validate(env)
		if len(c.want) == 0 {
			if err != nil {
				t.Errorf("%v: %v", c.args, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%v: accepted, want an error", c.args)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: error %q does not contain %q", c.args, err, w)
			}
		}
	}
}
