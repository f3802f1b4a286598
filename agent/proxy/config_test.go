package proxy

import (
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	kubeproxyconfig "k8s.io/kubernetes/pkg/proxy/apis/config"
	proxyconfigscheme "k8s.io/kubernetes/pkg/proxy/apis/config/scheme"
	"k8s.io/kubernetes/pkg/proxy/apis/config/validation"

	"github.com/iks-dev/iks/internal/config"
	"github.com/iks-dev/iks/internal/logging"
)

// The written file decodes strictly with kube-proxy's own scheme and
// passes kube-proxy's own validation, in both modes.
func TestConfigFileIsValidForKubeProxy(t *testing.T) {
	logging.Setup(logging.Options{Out: io.Discard}) // registers the "iks" log format, as iks does at start
	for _, mode := range []config.ProxyMode{config.ProxyModeNFTables, config.ProxyModeIPTables} {
		c := Config{NodeName: "edge-1", ClusterCIDR: netip.MustParsePrefix("172.30.0.0/16"),
			Kubeconfig: "/var/lib/iks/agent/kubelet.kubeconfig", Dir: t.TempDir()}
		if err := c.writeConfig(mode); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(filepath.Join(c.Dir, "config.yaml"))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("config file: %v %v", fi, err)
		}
		data, _ := os.ReadFile(c.configPath())
		obj, _, err := proxyconfigscheme.Codecs.UniversalDecoder().Decode(data, nil, nil)
		if err != nil {
			t.Fatalf("%s: kube-proxy cannot decode the config strictly: %v\n%s", mode, err, data)
		}
		kc, ok := obj.(*kubeproxyconfig.KubeProxyConfiguration)
		if !ok {
			t.Fatalf("decoded %T", obj)
		}
		if errs := validation.Validate(kc); len(errs) > 0 {
			t.Fatalf("%s: kube-proxy rejects the config: %v", mode, errs.ToAggregate())
		}
		if string(kc.Mode) != string(mode) || kc.HostnameOverride != "edge-1" || kc.DetectLocalMode != kubeproxyconfig.LocalModeClusterCIDR ||
			len(kc.DetectLocal.ClusterCIDRs) != 1 || kc.DetectLocal.ClusterCIDRs[0] != "172.30.0.0/16" {
			t.Errorf("%s: mode/hostname/local detection: %q %q %q %v", mode, kc.Mode, kc.HostnameOverride, kc.DetectLocalMode, kc.DetectLocal.ClusterCIDRs)
		}
		if kc.HealthzBindAddress != "127.0.0.1:10256" || kc.MetricsBindAddress != "127.0.0.1:10249" {
			t.Errorf("%s: healthz %q metrics %q, want loopback", mode, kc.HealthzBindAddress, kc.MetricsBindAddress)
		}
		if len(kc.NodePortAddresses) != 1 || kc.NodePortAddresses[0] != "0.0.0.0/0" {
			t.Errorf("%s: nodePortAddresses %v, want every node address", mode, kc.NodePortAddresses)
		}
		if kc.Linux.Conntrack.MaxPerCore == nil || *kc.Linux.Conntrack.MaxPerCore != 0 {
			t.Errorf("%s: conntrack maxPerCore %v, want 0 (leave nf_conntrack_max alone)", mode, kc.Linux.Conntrack.MaxPerCore)
		}
		if kc.IPTables.LocalhostNodePorts == nil || *kc.IPTables.LocalhostNodePorts {
			t.Errorf("%s: localhost NodePorts enabled (needs route_localnet)", mode)
		}
		if kc.ClientConnection.Kubeconfig != c.Kubeconfig {
			t.Errorf("%s: kubeconfig %q", mode, kc.ClientConnection.Kubeconfig)
		}
	}
}
