package config

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func TestClusterDNSIP(t *testing.T) {
	for cidr, want := range map[string]string{
		"172.21.0.0/16":  "172.21.0.10",
		"10.96.0.0/12":   "10.96.0.10",
		"192.168.7.0/28": "192.168.7.10",
		"10.43.255.0/24": "10.43.255.10",
	} {
		if got := ClusterDNSIP(netip.MustParsePrefix(cidr)); got.String() != want {
			t.Errorf("ClusterDNSIP(%s) = %s, want %s", cidr, got, want)
		}
	}
	if got := ClusterDNSIP(netip.Prefix{}); got.IsValid() {
		t.Errorf("ClusterDNSIP of an unset range = %s, want the zero Addr", got)
	}
	a := Agent{ServiceCIDR: netip.MustParsePrefix(DefaultServiceCIDR)}
	if got := a.ClusterDNS().String(); got != "172.21.0.10" {
		t.Errorf("default agent cluster DNS %s, want 172.21.0.10", got)
	}
}

func TestDisableIsValidated(t *testing.T) {
	s, err := flags(t, "--disable", "coredns", "--disable", "coredns").Validate(goodEnv())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(s.Disable, ",") != "coredns" {
		t.Errorf("Disable = %v, want [coredns] once", s.Disable)
	}
	_, err = flags(t, "--disable", "traefik").Validate(goodEnv())
	if err == nil || !strings.Contains(err.Error(), `--disable "traefik"`) || !strings.Contains(err.Error(), "coredns") {
		t.Fatalf("unknown add-on: error %v, want one naming it and listing coredns", err)
	}
}

func TestDisableFromConfigFile(t *testing.T) {
	var f ServerFlags
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	f.AddFlags(fs)
	if err := fs.Parse([]string{"--data-dir", t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte("disable:\n- coredns\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := ApplyFile(fs, p, true); err != nil {
		t.Fatal(err)
	}
	s, err := f.Validate(goodEnv())
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Disable) != 1 || s.Disable[0] != "coredns" {
		t.Fatalf("Disable from config file = %v, want [coredns]", s.Disable)
	}
}
