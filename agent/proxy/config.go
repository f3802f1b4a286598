package proxy

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubeproxyv1alpha1 "k8s.io/kube-proxy/config/v1alpha1"
	"sigs.k8s.io/yaml"

	"github.com/iks-dev/iks/internal/config"
	"github.com/iks-dev/iks/internal/fsutil"
	"github.com/iks-dev/iks/internal/logging"
)

// Config of the embedded kube-proxy.
type Config struct {
	NodeName string
	// ClusterCIDR is the pod range: traffic from it is "local" to the
	// cluster and is not masqueraded on its way to a ClusterIP.
	ClusterCIDR netip.Prefix
	// Kubeconfig is the node's kubelet client identity (system:node:NAME).
	Kubeconfig string
	// Mode as asked; auto is resolved in Init.
	Mode config.ProxyMode
	// Dir holds kube-proxy's configuration file.
	Dir string
	// ArgsDir is where its command line is recorded (component.WriteArgs).
	ArgsDir string
}

func (c Config) configPath() string { return filepath.Join(c.Dir, "config.yaml") }

// KubeProxyConfiguration is the configuration kube-proxy runs with in mode
// (nftables or iptables).
//
//   - NodePorts answer on every IPv4 address of the node (public and
//     private interfaces alike), never on 127.0.0.1: localhost NodePorts
//     need route_localnet, which exposes loopback services to the network.
//   - healthz and metrics listen on loopback only, so several nodes on one
//     host (or other software on the node) are not exposed or clashed with.
//   - conntrack: the table size (nf_conntrack_max) is left to the host;
//     it is global and read-only inside a network namespace. The per-netns
//     TCP timeouts keep kube-proxy's defaults.
func (c Config) KubeProxyConfiguration(mode config.ProxyMode) *kubeproxyv1alpha1.KubeProxyConfiguration {
	zero, f := int32(0), false
	loop := func(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }
	return &kubeproxyv1alpha1.KubeProxyConfiguration{
		TypeMeta:           metav1.TypeMeta{APIVersion: kubeproxyv1alpha1.SchemeGroupVersion.String(), Kind: "KubeProxyConfiguration"},
		HostnameOverride:   c.NodeName,
		BindAddress:        "0.0.0.0",
		HealthzBindAddress: loop(config.ProxyHealthzPort),
		MetricsBindAddress: loop(config.ProxyMetricsPort),
		Mode:               kubeproxyv1alpha1.ProxyMode(mode),
		ClusterCIDR:        c.ClusterCIDR.String(),
		DetectLocalMode:    "ClusterCIDR",
		NodePortAddresses:  []string{"0.0.0.0/0"},
		IPTables:           kubeproxyv1alpha1.KubeProxyIPTablesConfiguration{LocalhostNodePorts: &f},
		Conntrack:          kubeproxyv1alpha1.KubeProxyConntrackConfiguration{MaxPerCore: &zero, Min: &zero},
		Logging:            *logging.KubeConfig(),
	}
}

// writeConfig writes the configuration file kube-proxy reads (0600: it
// names the node's credentials).
func (c Config) writeConfig(mode config.ProxyMode) error {
	kc := c.KubeProxyConfiguration(mode)
	kc.ClientConnection.Kubeconfig = c.Kubeconfig
	data, err := yaml.Marshal(kc)
	if err != nil {
		return fmt.Errorf("marshal kube-proxy config: %w", err)
	}
	if err := os.MkdirAll(c.Dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", c.Dir, err)
	}
	return fsutil.WriteFileAtomic(c.configPath(), data, 0o600)
}
