package vpnconn

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestActionsDefaultsAsTheChart(t *testing.T) {
	for _, tc := range []struct {
		name           string
		auto, gateway  string
		close, dpd     string
		wantReinitiate bool
	}{
		// closeaction auto: restart when the cluster initiates, none otherwise.
		{"start", "start", "198.51.100.7", "restart", "restart", true},
		{"add to a known gateway", "add", "198.51.100.7", "none", "restart", false},
		// dpdaction restart toward %any cannot re-initiate: clear.
		{"add from any", "add", "", "none", "clear", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := validSpec()
			s.IPsec.Auto, s.Remote.Gateway = tc.auto, tc.gateway
			p, err := Validate("c", s, testCluster)
			if err != nil {
				t.Fatal(err)
			}
			a := p.Actions
			if a.CloseAction != tc.close || a.DPDAction != tc.dpd || a.DPDDelay != DPDDelay || a.KeyingTries != 0 {
				t.Errorf("actions %+v, want close %s dpd %s delay %s keyingtries 0", a, tc.close, tc.dpd, DPDDelay)
			}
			// ikelifetime 3h, lifetime 1h, margintime 9m.
			if a.IKERekey != "10260s" || a.IKEOver != "540s" || a.ChildRekey != "3060s" || a.ChildLife != "3600s" || a.Rand != "540s" {
				t.Errorf("rekey times %+v", a)
			}
			if p.Reinitiate() != tc.wantReinitiate {
				t.Errorf("Reinitiate %v, want %v", p.Reinitiate(), tc.wantReinitiate)
			}
		})
	}
}

func TestActionsMapped(t *testing.T) {
	for _, tc := range []struct {
		close, dpd, tries, margin string
		wantClose, wantDPD, delay string
		wantTries                 int
		wantChildRekey            string
		wantReinitiate            bool
	}{
		{"none", "none", "3", "2.5m", "none", "clear", "0s", 3, "3450s", false},
		{"clear", "clear", "%forever", "90s", "clear", "clear", DPDDelay, 0, "3510s", false},
		{"hold", "hold", "1", "10", "trap", "trap", DPDDelay, 1, "3590s", false},
		{"restart", "restart", "0", "1h", "", "", "", 0, "", false}, // margintime = lifetime: refused below
		{"none", "restart", "%forever", "9m", "none", "restart", DPDDelay, 0, "3060s", true},
		{"restart", "clear", "%forever", "9m", "restart", "clear", DPDDelay, 0, "3060s", true},
		{"restart", "restart", "5", "9m", "restart", "restart", DPDDelay, 5, "3060s", false},
	} {
		s := validSpec()
		s.IPsec = IPsec{Auto: "start", CloseAction: tc.close, DPDAction: tc.dpd, KeyingTries: Scalar{tc.tries}, MarginTime: tc.margin}
		s.Remote.Gateway = "198.51.100.7"
		p, err := Validate("c", s, testCluster)
		if tc.wantClose == "" {
			if err == nil || !strings.Contains(err.Error(), "ipsec.margintime 1h must be shorter than ipsec.lifetime 1h") {
				t.Errorf("margintime 1h with lifetime 1h: %v", err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%+v: %v", s.IPsec, err)
			continue
		}
		a := p.Actions
		if a.CloseAction != tc.wantClose || a.DPDAction != tc.wantDPD || a.DPDDelay != tc.delay || a.KeyingTries != tc.wantTries ||
			a.ChildRekey != tc.wantChildRekey || p.Reinitiate() != tc.wantReinitiate {
			t.Errorf("%+v: got %+v reinitiate %v", s.IPsec, a, p.Reinitiate())
		}
		m, err := p.LoadConn(nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		conn := section(t, m, "c")
		child := section(t, section(t, conn, "children"), "c")
		if child.Get("close_action") != tc.wantClose || child.Get("dpd_action") != tc.wantDPD || conn.Get("dpd_delay") != tc.delay ||
			child.Get("rekey_time") != tc.wantChildRekey {
			t.Errorf("%+v: load-conn %s", s.IPsec, m)
		}
	}
}

func TestActionsRefused(t *testing.T) {
	for _, tc := range []struct {
		mod  func(*IPsec)
		want string
	}{
		{func(i *IPsec) { i.CloseAction = "reboot" }, `ipsec.closeaction "reboot": use one of none, clear, hold, restart, auto`},
		{func(i *IPsec) { i.DPDAction = "auto" }, `ipsec.dpdaction "auto": use one of none, clear, hold, restart`},
		{func(i *IPsec) { i.KeyingTries = Scalar{"forever"} }, `ipsec.keyingtries "forever": use a positive number of attempts or %forever`},
		{func(i *IPsec) { i.KeyingTries = Scalar{"-1"} }, `ipsec.keyingtries "-1"`},
		{func(i *IPsec) { i.MarginTime = "9 minutes" }, `ipsec.margintime "9 minutes": give a duration such as 3h, 2.5m or 3600s`},
		{func(i *IPsec) { i.Lifetime = "1w" }, `ipsec.lifetime "1w": give a duration`},
		{func(i *IPsec) { i.IKELifetime = "0" }, `ipsec.ikelifetime "0": give a duration`},
		{func(i *IPsec) { i.MarginTime = "2h" }, "ipsec.margintime 2h must be shorter than ipsec.lifetime 1h"},
	} {
		s := validSpec()
		tc.mod(&s.IPsec)
		_, err := Validate("c", s, testCluster)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want %q", s.IPsec, err, tc.want)
		}
	}
}

func TestKeyingTriesNumberOrString(t *testing.T) {
	var i IPsec
	if err := json.Unmarshal([]byte(`{"keyingtries": 3}`), &i); err != nil || i.KeyingTries.V != "3" {
		t.Errorf("keyingtries 3: %q %v", i.KeyingTries, err)
	}
	if err := json.Unmarshal([]byte(`{"keyingtries": "%forever"}`), &i); err != nil || i.KeyingTries.V != "%forever" {
		t.Errorf("keyingtries %%forever: %q %v", i.KeyingTries, err)
	}
	if err := json.Unmarshal([]byte(`{"keyingtries": [1]}`), &i); err == nil {
		t.Error("keyingtries [1] accepted")
	}
}
