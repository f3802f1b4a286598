package vpnconn

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/strongswan/govici/vici"
)

func section(t *testing.T, m *vici.Message, key string) *vici.Message {
	t.Helper()
	s, ok := m.Get(key).(*vici.Message)
	if !ok {
		t.Fatalf("no section %q in %s", key, m)
	}
	return s
}

func TestLoadConn(t *testing.T) {
	s := validSpec()
	s.IPsec = IPsec{Auto: "start", IKE: "aes256-sha256-modp2048!", ESP: "aes128gcm16"}
	s.Remote.Gateway = "198.51.100.7"
	p, err := Validate("onprem", s, testCluster)
	if err != nil {
		t.Fatal(err)
	}
	m, err := p.LoadConn([]netip.Addr{netip.MustParseAddr("192.0.2.10")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	conn := section(t, m, "onprem")
	for k, want := range map[string]any{"version": "2", "rekey_time": "10260s", "over_time": "540s", "rand_time": "540s", "dpd_delay": DPDDelay, "keyingtries": "0", "unique": "replace",
		"local_addrs": []string{"192.0.2.10"}, "remote_addrs": []string{"198.51.100.7"}, "proposals": []string{"aes256-sha256-modp2048"}} {
		switch w := want.(type) {
		case string:
			if got := conn.Get(k); got != w {
				t.Errorf("%s = %v, want %v", k, got, w)
			}
		case []string:
			if got, _ := conn.Get(k).([]string); !slices.Equal(got, w) {
				t.Errorf("%s = %v, want %v", k, got, w)
			}
		}
	}
	if id := section(t, conn, "local").Get("id"); id != "ibm-cloud" {
		t.Errorf("local id %v", id)
	}
	if auth := section(t, conn, "remote").Get("auth"); auth != "psk" {
		t.Errorf("remote auth %v", auth)
	}
	child := section(t, section(t, conn, "children"), "onprem")
	for k, want := range map[string]string{"start_action": "start", "dpd_action": "restart", "close_action": "restart",
		"rekey_time": "3060s", "life_time": "3600s", "rand_time": "540s"} {
		if got := child.Get(k); got != want {
			t.Errorf("child %s = %v, want %v", k, got, want)
		}
	}
	if got, _ := child.Get("local_ts").([]string); !slices.Equal(got, []string{"172.30.0.0/16", "172.21.0.0/16"}) {
		t.Errorf("local_ts %v", got)
	}
	if got, _ := child.Get("esp_proposals").([]string); !slices.Equal(got, []string{"aes128gcm16", "default"}) {
		t.Errorf("esp_proposals %v", got)
	}
}

func TestLoadConnAddWaits(t *testing.T) {
	p, err := Validate("c", validSpec(), testCluster)
	if err != nil {
		t.Fatal(err)
	}
	m, err := p.LoadConn(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	conn := section(t, m, "c")
	if got, _ := conn.Get("local_addrs").([]string); !slices.Equal(got, []string{"%any"}) {
		t.Errorf("local_addrs %v", got)
	}
	child := section(t, section(t, conn, "children"), "c")
	if child.Get("start_action") != "none" || child.Get("dpd_action") != "clear" {
		t.Errorf("auto add with %%any: start_action %v dpd_action %v", child.Get("start_action"), child.Get("dpd_action"))
	}
	sh, err := p.LoadShared("s3cret")
	if err != nil {
		t.Fatal(err)
	}
	if sh.Get("type") != "IKE" || sh.Get("data") != "s3cret" || !slices.Equal(sh.Get("owners").([]string), []string{"ibm-cloud", "on-prem"}) {
		t.Errorf("load-shared %s", sh)
	}
}
