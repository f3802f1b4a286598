package cni

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/containernetworking/cni/libcni"
)

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

func TestWriteConflist(t *testing.T) {
	path := filepath.Join(t.TempDir(), "net.d", "10-iks.conflist")
	cfg := ConflistConfig{
		MTU:     1480,
		Blocks:  []netip.Prefix{netip.MustParsePrefix("172.30.0.0/24"), netip.MustParsePrefix("172.30.4.0/26")},
		DataDir: "/var/lib/iks/agent/ipam",
		LogFile: "/var/log/iks/cni.log",
	}
	if err := WriteConflist(path, cfg); err != nil {
		t.Fatalf("WriteConflist: %v", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %o, want 600 (CIS 1.1.9)", fi.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	list, err := libcni.ConfListFromBytes(data)
	if err != nil {
		t.Fatalf("libcni.ConfListFromBytes: %v\n%s", err, data)
	}
	if list.Name != NetworkName || list.CNIVersion != "1.0.0" || len(list.Plugins) != 2 {
		t.Fatalf("conflist = %+v", list)
	}
	if list.Plugins[0].Network.Type != PluginType || list.Plugins[1].Network.Type != "portmap" {
		t.Errorf("plugin types = %q, %q", list.Plugins[0].Network.Type, list.Plugins[1].Network.Type)
	}
	if !list.Plugins[1].Network.Capabilities["portMappings"] {
		t.Error("portmap lacks the portMappings capability")
	}
	var pm map[string]any
	if err := json.Unmarshal(list.Plugins[1].Bytes, &pm); err != nil || pm["snat"] != true {
		t.Errorf("portmap entry %s: snat not true (%v)", list.Plugins[1].Bytes, err)
	}

	// The plugin entry, with name and cniVersion injected as the runtime
	// does, must load back into the same configuration.
	var entry map[string]any
	if err := json.Unmarshal(list.Plugins[0].Bytes, &entry); err != nil {
		t.Fatal(err)
	}
	entry["name"], entry["cniVersion"] = list.Name, list.CNIVersion
	raw, _ := json.Marshal(entry)
	conf, err := LoadNetConf(raw)
	if err != nil {
		t.Fatalf("LoadNetConf of the generated entry: %v", err)
	}
	if conf.MTU != cfg.MTU || conf.LogFile != cfg.LogFile || conf.IPAM.DataDir != cfg.DataDir ||
		len(conf.IPAM.Blocks) != 2 || conf.IPAM.Blocks[1] != cfg.Blocks[1] {
		t.Errorf("round-tripped configuration %+v differs from %+v", conf, cfg)
	}

	// Same content: the file is not replaced.
	before := inode(t, path)
	if err := WriteConflist(path, cfg); err != nil {
		t.Fatal(err)
	}
	if inode(t, path) != before {
		t.Error("unchanged conflist was rewritten")
	}
	// Changed content: the file is replaced atomically (new inode).
	cfg.MTU = 1400
	if err := WriteConflist(path, cfg); err != nil {
		t.Fatal(err)
	}
	if inode(t, path) == before {
		t.Error("changed conflist was not replaced")
	}
	if leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*")); len(leftovers) != 0 {
		t.Errorf("temporary files left behind: %v", leftovers)
	}
}

func TestWriteConflistRejectsBadConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "10-iks.conflist")
	if err := WriteConflist(path, ConflistConfig{}); err == nil {
		t.Error("WriteConflist without blocks succeeded")
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("a rejected configuration was written (stat: %v)", err)
	}
}
