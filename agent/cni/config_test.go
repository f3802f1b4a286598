package cni

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
)

// testConf returns a network configuration as the runtime passes it to the
// plugin (name and cniVersion injected from the conflist).
func testConf(t *testing.T, dataDir string, mtu int, blocks ...string) []byte {
	t.Helper()
	conf := map[string]any{
		"cniVersion": "1.0.0",
		"name":       NetworkName,
		"type":       PluginType,
		"mtu":        mtu,
		"ipam":       map[string]any{"blocks": blocks, "dataDir": dataDir},
	}
	data, err := json.Marshal(conf)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestLoadNetConf(t *testing.T) {
	conf, err := LoadNetConf([]byte(`{"cniVersion":"1.0.0","name":"iks","type":"iks-cni","mtu":1480,
		"ipam":{"blocks":["172.30.0.0/24","172.30.1.0/26"]},"logFile":"/var/log/iks/cni.log"}`))
	if err != nil {
		t.Fatalf("LoadNetConf: %v", err)
	}
	if conf.MTU != 1480 || conf.LogFile != "/var/log/iks/cni.log" || conf.Name != "iks" {
		t.Errorf("parsed %+v", conf)
	}
	want := []netip.Prefix{netip.MustParsePrefix("172.30.0.0/24"), netip.MustParsePrefix("172.30.1.0/26")}
	if len(conf.IPAM.Blocks) != 2 || conf.IPAM.Blocks[0] != want[0] || conf.IPAM.Blocks[1] != want[1] {
		t.Errorf("blocks = %v, want %v", conf.IPAM.Blocks, want)
	}
	if conf.IPAM.DataDir != DefaultIPAMDataDir {
		t.Errorf("dataDir = %q, want default %q", conf.IPAM.DataDir, DefaultIPAMDataDir)
	}
}

func TestLoadNetConfAgentBlocks(t *testing.T) {
	conf, err := LoadNetConf([]byte(`{"cniVersion":"1.0.0","name":"iks","type":"iks-cni",
		"ipam":{"agentSocket":"/var/lib/iks/run/agent.sock","dataDir":"/var/lib/iks/agent/ipam"}}`))
	if err != nil {
		t.Fatalf("LoadNetConf without fixed blocks: %v", err)
	}
	if conf.IPAM.AgentSocket != "/var/lib/iks/run/agent.sock" || len(conf.IPAM.Blocks) != 0 {
		t.Errorf("parsed %+v", conf.IPAM)
	}
}

func TestLoadNetConfRejects(t *testing.T) {
	cases := map[string]struct{ conf, mention string }{
		"not json":        {`{`, "parse network configuration"},
		"no blocks":       {`{"name":"iks","ipam":{}}`, "ipam.blocks"},
		"bad block":       {`{"name":"iks","ipam":{"blocks":["172.30.0.0"]}}`, "172.30.0.0"},
		"host bits":       {`{"name":"iks","ipam":{"blocks":["172.30.0.1/24"]}}`, "use 172.30.0.0/24"},
		"mtu":             {`{"name":"iks","mtu":20,"ipam":{"blocks":["172.30.0.0/24"]}}`, "mtu 20"},
		"relative dir":    {`{"name":"iks","ipam":{"blocks":["172.30.0.0/24"],"dataDir":"ipam"}}`, `"ipam"`},
		"relative log":    {`{"name":"iks","logFile":"cni.log","ipam":{"blocks":["172.30.0.0/24"]}}`, `"cni.log"`},
		"relative socket": {`{"name":"iks","ipam":{"agentSocket":"agent.sock"}}`, `"agent.sock"`},
		"bad prevResult":  {`{"name":"iks","cniVersion":"1.0.0","prevResult":{"ips":[{"address":"x"}]},"ipam":{"blocks":["172.30.0.0/24"]}}`, "prevResult"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := LoadNetConf([]byte(c.conf))
			if err == nil {
				t.Fatal("LoadNetConf succeeded, want error")
			}
			if !strings.Contains(err.Error(), c.mention) {
				t.Errorf("error %q does not mention %q", err, c.mention)
			}
		})
	}
}

func TestHostVethName(t *testing.T) {
	a := HostVethName("0123456789abcdef", "eth0")
	if len(a) != 15 || !strings.HasPrefix(a, HostVethPrefix) {
		t.Errorf("HostVethName = %q, want cali + 11 hex digits", a)
	}
	// sha1("0123456789abcdefeth0") starts with these 11 hex digits.
	if want := "cali39b37f29bf3"; a != want {
		t.Errorf("HostVethName = %q, want %q", a, want)
	}
	if a != HostVethName("0123456789abcdef", "eth0") {
		t.Error("HostVethName is not deterministic")
	}
	if a == HostVethName("0123456789abcdef", "eth1") || a == HostVethName("0123456789abcdee", "eth0") {
		t.Error("HostVethName collides for different attachments")
	}
}
