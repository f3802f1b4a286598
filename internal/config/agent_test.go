package config

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func agentFlags(t *testing.T, args ...string) *AgentFlags {
	t.Helper()
	var f AgentFlags
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	f.AddFlags(fs)
	if err := fs.Parse(append([]string{"--data-dir", t.TempDir()}, args...)); err != nil {
		t.Fatal(err)
	}
	return &f
}

func TestAgentValidate(t *testing.T) {
	j, err := agentFlags(t, "--server", "https://10.0.0.1", "--token", "K10abc::abcdef.0123456789abcdef").Validate(goodEnv())
	if err != nil {
		t.Fatal(err)
	}
	if j.ServerURL.String() != "https://10.0.0.1:6443" || j.NodeIP.String() != "10.0.0.5" || j.NodeName != "edge-1" {
		t.Fatalf("got %s %s %s", j.ServerURL, j.NodeIP, j.NodeName)
	}
	if j.ClusterDomain != DefaultClusterDomain {
		t.Errorf("cluster domain %q, want the default %q", j.ClusterDomain, DefaultClusterDomain)
	}
	j, err = agentFlags(t, "--server", "https://10.0.0.1", "--token", "x", "--cluster-domain", "edge.example").Validate(goodEnv())
	if err != nil || j.ClusterDomain != "edge.example" {
		t.Fatalf("--cluster-domain edge.example: got %+v, %v", j, err)
	}
}

func TestAgentBadValues(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--token", "x"}, "--server is required"},
		{[]string{"--server", "http://10.0.0.1:6443", "--token", "x"}, "is not an https URL"},
		{[]string{"--server", "https://10.0.0.1:6443/api", "--token", "x"}, "is not an https URL"},
		{[]string{"--server", "https://10.0.0.1:6443"}, "--token is required"},
		{[]string{"--server", "https://s:6443", "--token", "x", "--node-ip", "10.1.1.1"}, "not an address of this host"},
		{[]string{"--server", "https://s:6443", "--token", "x", "--node-label", "bad"}, "--node-label"},
		{[]string{"--server", "https://s:6443", "--token", "x", "--cluster-domain", "Bad_Domain"}, `--cluster-domain "Bad_Domain" is not a valid DNS domain`},
	} {
		_, err := agentFlags(t, c.args...).Validate(goodEnv())
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: got %v, want %q", c.args, err, c.want)
		}
	}
	env := goodEnv()
	env.euid = 1000
	if _, err := agentFlags(t, "--server", "https://s", "--token", "x").Validate(env); err == nil || !strings.Contains(err.Error(), "root") {
		t.Errorf("non-root: %v", err)
	}
}
