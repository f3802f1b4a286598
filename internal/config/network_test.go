package config

import (
	"strings"
	"testing"
	"time"
)

func TestNetworkFlags(t *testing.T) {
	s, err := flags(t).Validate(goodEnv())
	if err != nil {
		t.Fatal(err)
	}
	if s.Agent.GracefulRestartTime != 120*time.Second || s.Agent.Encapsulation != "CrossSubnet" {
		t.Errorf("defaults: graceful restart %s, encapsulation %q", s.Agent.GracefulRestartTime, s.Agent.Encapsulation)
	}
	s, err = flags(t, "--bgp-graceful-restart-time", "0", "--encapsulation", "Always").Validate(goodEnv())
	if err != nil || s.Agent.GracefulRestartTime != 0 || s.Agent.Encapsulation != "Always" {
		t.Errorf("0/Always: %v %+v", err, s)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--bgp-graceful-restart-time", "1500ms"}, "--bgp-graceful-restart-time 1.5s is invalid"},
		{[]string{"--bgp-graceful-restart-time", "2h"}, "from 1s to 4095s"},
		{[]string{"--bgp-graceful-restart-time", "-5s"}, "is invalid"},
		{[]string{"--encapsulation", "vxlan"}, `--encapsulation "vxlan" is unknown`},
	} {
		if _, err := flags(t, c.args...).Validate(goodEnv()); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("server %v: got %v, want %q", c.args, err, c.want)
		}
		args := append([]string{"--server", "https://10.0.0.1", "--token", "x"}, c.args...)
		if _, err := agentFlags(t, args...).Validate(goodEnv()); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("agent %v: got %v, want %q", c.args, err, c.want)
		}
	}
}
