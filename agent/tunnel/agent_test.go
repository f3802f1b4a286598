package tunnel

import (
	"context"
	"net/netip"
	"net/url"
	"strings"
	"testing"
)

func TestAgentIdentifiers(t *testing.T) {
	for _, tc := range []struct {
		name, ip, want string
	}{
		{"node-1", "10.0.0.5", "ipv4=10.0.0.5&host=node-1"},
		{"node-2", "::ffff:10.0.0.6", "ipv4=10.0.0.6&host=node-2"},
		{"node-3", "fd00::3", "ipv6=fd00%3A%3A3&host=node-3"},
	} {
		got := AgentIdentifiers(tc.name, netip.MustParseAddr(tc.ip))
		if got != tc.want {
			t.Errorf("AgentIdentifiers(%s, %s) = %q, want %q", tc.name, tc.ip, got, tc.want)
		}
		// The server parses them as a URL query.
		q, err := url.ParseQuery(got)
		if err != nil {
			t.Fatal(err)
		}
		if q.Get("host") != tc.name || (q.Get("ipv4") == "" && q.Get("ipv6") == "") {
			t.Errorf("%q parses to %v", got, q)
		}
	}
}

func TestInitNamesBadValues(t *testing.T) {
	good := Config{ServerHost: "10.0.0.1", CACert: "/ca", ClientCert: "/c", ClientKey: "/k",
		NodeName: "node-1", NodeIP: netip.MustParseAddr("10.0.0.5")}
	if err := New(good, discard()).Init(context.Background()); err != nil {
		t.Fatalf("good config refused: %v", err)
	}
	if got := New(good, discard()).cfg.ServerAddress(); got != "10.0.0.1:8132" {
		t.Fatalf("default server address %s", got)
	}
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"no server", func(c *Config) { c.ServerHost = "" }, "server host"},
		{"bad port", func(c *Config) { c.ServerPort = -1 }, "-1"},
		{"no node", func(c *Config) { c.NodeName = "" }, "node name"},
		{"no IP", func(c *Config) { c.NodeIP = netip.Addr{} }, "node IP"},
		{"no key", func(c *Config) { c.ClientKey = "" }, "key"},
		{"interval above cap", func(c *Config) { c.SyncInterval, c.SyncIntervalCap = 20e9, 10e9 }, "cap"},
	} {
		cfg := good
		tc.mutate(&cfg)
		err := New(cfg, discard()).Init(context.Background())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: want error naming %q, got %v", tc.name, tc.want, err)
		}
	}
}
