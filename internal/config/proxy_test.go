package config

import (
	"strings"
	"testing"
)

func TestProxyMode(t *testing.T) {
	s, err := flags(t).Validate(goodEnv())
	if err != nil {
		t.Fatal(err)
	}
	if s.Agent.ProxyMode != ProxyModeAuto {
		t.Errorf("default proxy mode %q, want auto", s.Agent.ProxyMode)
	}
	for _, m := range []string{"nftables", "iptables"} {
		s, err := flags(t, "--proxy-mode", m).Validate(goodEnv())
		if err != nil || s.Agent.ProxyMode != ProxyMode(m) {
			t.Errorf("--proxy-mode %s: %v %+v", m, err, s)
		}
		j, err := agentFlags(t, "--server", "https://s", "--token", "x", "--proxy-mode", m).Validate(goodEnv())
		if err != nil || j.ProxyMode != ProxyMode(m) {
			t.Errorf("agent --proxy-mode %s: %v", m, err)
		}
	}
	want := []string{`--proxy-mode "ipvs"`, "auto, nftables, iptables"}
	_, err = flags(t, "--proxy-mode", "ipvs").Validate(goodEnv())
	_, aerr := agentFlags(t, "--server", "https://s", "--token", "x", "--proxy-mode", "ipvs").Validate(goodEnv())
	for _, e := range []error{err, aerr} {
		for _, w := range want {
			if e == nil || !strings.Contains(e.Error(), w) {
				t.Errorf("bad mode: error %v does not contain %q", e, w)
			}
		}
	}
	env := goodEnv()
	env.busy = map[int]bool{ProxyHealthzPort: true}
	if _, err := flags(t).Validate(env); err == nil || !strings.Contains(err.Error(), "kube-proxy healthz") {
		t.Errorf("busy kube-proxy port: %v", err)
	}
	if _, err := agentFlags(t, "--server", "https://s", "--token", "x").Validate(env); err == nil || !strings.Contains(err.Error(), "kube-proxy") {
		t.Errorf("agent, busy kube-proxy port: %v", err)
	}
}
