package cni

import (
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/containernetworking/cni/libcni"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/iks-dev/iks/tests/testutil"
)

func resultJSON(r *types100.Result) (string, error) {
	data, err := json.Marshal(r)
	return string(data), err
}

// TestPluginThroughLibcni runs the plugin as containerd does: libcni execs
// a symlink named iks-cni (here to the test binary, whose TestMain calls
// PluginMain) with a conflist, from the node's network namespace.
func TestPluginThroughLibcni(t *testing.T) {
	testutil.RequireRoot(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	binDir := t.TempDir()
	if err := os.Symlink(exe, filepath.Join(binDir, PluginType)); err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(t.TempDir(), "ipam")
	logFile := filepath.Join(t.TempDir(), "cni.log")
	rendered, err := RenderConflist(ConflistConfig{
		Blocks: []netip.Prefix{netip.MustParsePrefix("172.30.12.0/24")}, DataDir: dataDir, LogFile: logFile,
	})
	if err != nil {
		t.Fatal(err)
	}
	// Keep only this plugin: portmap is a separate binary not built here.
	var raw map[string]any
	if err := json.Unmarshal(rendered, &raw); err != nil {
		t.Fatal(err)
	}
	raw["cniVersion"] = "1.1.0"
	raw["plugins"] = raw["plugins"].([]any)[:1]
	data, _ := json.Marshal(raw)
	list, err := libcni.ConfListFromBytes(data)
	if err != nil {
		t.Fatal(err)
	}

	hostNS := newHostNS(t)
	podNS := newNetNS(t)
	cni := libcni.NewCNIConfigWithCacheDir([]string{binDir}, t.TempDir(), nil)
	rt := &libcni.RuntimeConf{ContainerID: "ctr-exec", NetNS: podNS.Path(), IfName: "eth0"}
	ctx := context.Background()

	var res *types100.Result
	doIn(t, hostNS, func() error {
		r, err := cni.AddNetworkList(ctx, list, rt)
		if err != nil {
			return err
		}
		res, err = types100.NewResultFromResult(r)
		return err
	})
	if len(res.IPs) != 1 || len(res.Interfaces) != 2 || res.Interfaces[1].Sandbox != podNS.Path() {
		t.Fatalf("ADD result = %+v", res)
	}
	podIP, _ := netip.AddrFromSlice(res.IPs[0].Address.IP)
	dialEcho(t, hostNS, startEcho(t, podNS, podIP.Unmap()))

	doIn(t, hostNS, func() error { return cni.CheckNetworkList(ctx, list, rt) })
	doIn(t, hostNS, func() error { return cni.GetStatusNetworkList(ctx, list) })
	doIn(t, hostNS, func() error { return cni.DelNetworkList(ctx, list, rt) })
	if linkExists(t, hostNS, HostVethName("ctr-exec", "eth0")) {
		t.Error("host veth remains after DEL through libcni")
	}
	if fi, err := os.Stat(logFile); err != nil || fi.Size() == 0 {
		t.Errorf("plugin log file %s is missing or empty (%v)", logFile, err)
	}
}
