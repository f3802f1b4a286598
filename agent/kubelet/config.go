// Package kubelet runs the kubelet in-process with a configuration made
// for iks: cgroupfs (or systemd where it manages cgroups), every path
// under the data dir, webhook authn/authz, anonymous auth off.
package kubelet

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"
	"sigs.k8s.io/yaml"

	"github.com/iks-dev/iks/internal/config"
	"github.com/iks-dev/iks/internal/fsutil"
	"github.com/iks-dev/iks/internal/logging"
)

// Config of the kubelet.
type Config struct {
	NodeName   string
	NodeIP     netip.Addr
	NodeLabels []string
	// ExternalAddresses leaves the node's addresses to the server (a
	// dual-homed node: private InternalIP, public ExternalIP).
	ExternalAddresses bool
	RootDir           string
	Kubeconfig        string
	// BootstrapKubeconfig, when set, makes kubelet request its client
	// certificate with a CSR (TLS bootstrap) before using Kubeconfig.
	BootstrapKubeconfig string
	ClientCA            string
	ServingCert         string
	ServingKey          string
	RuntimeSocket       string
	CgroupRoot          string
	SystemdCgroup       bool
	ClusterDomain       string
	// ClusterDNS is the kube-dns Service IP pods get as nameserver
	// (dnsPolicy ClusterFirst, with the cluster search domains and ndots:5).
	ClusterDNS netip.Addr
	ExtraArgs  []string // key=value, without dashes
	ArgsDir    string   // where its command line is recorded (component.WriteArgs)
}

func (c Config) configPath() string { return filepath.Join(c.RootDir, "config.yaml") }

// KubeletConfiguration builds the kubelet config file content.
func (c Config) KubeletConfiguration() *kubeletv1beta1.KubeletConfiguration {
	f, t := false, true
	driver := "cgroupfs"
	if c.SystemdCgroup {
		driver = "systemd"
	}
	kc := &kubeletv1beta1.KubeletConfiguration{
		TypeMeta:                 metav1.TypeMeta{APIVersion: "kubelet.config.k8s.io/v1beta1", Kind: "KubeletConfiguration"},
		CgroupDriver:             driver,
		FailCgroupV1:             &f,
		FailSwapOn:               &f,
		CgroupRoot:               c.CgroupRoot,
		ContainerRuntimeEndpoint: "unix://" + c.RuntimeSocket,
		PodLogsDir:               filepath.Join(c.RootDir, "pod-logs"),
		VolumePluginDir:          filepath.Join(c.RootDir, "volume-plugins"),
		Address:                  "0.0.0.0",
		HealthzBindAddress:       "127.0.0.1",
		ReadOnlyPort:             0,
		TLSCertFile:              c.ServingCert,
		TLSPrivateKeyFile:        c.ServingKey,
		TLSMinVersion:            "VersionTLS12",
		TLSCipherSuites:          slices.Clone(config.TLSCipherSuites),
		ClusterDomain:            c.ClusterDomain,
		ResolverConfig:           ptr(ResolvConf()),
		// Without a serving certificate given, kubelet asks the cluster for
		// one (a kubelet-serving CSR the server approves) and rotates both.
		ServerTLSBootstrap:    c.ServingCert == "",
		RotateCertificates:    c.BootstrapKubeconfig != "",
		ProtectKernelDefaults: false,
		EnableServer:          &t,
		Authentication: kubeletv1beta1.KubeletAuthentication{
			Anonymous: kubeletv1beta1.KubeletAnonymousAuthentication{Enabled: &f},
			Webhook:   kubeletv1beta1.KubeletWebhookAuthentication{Enabled: &t},
			X509:      kubeletv1beta1.KubeletX509Authentication{ClientCAFile: c.ClientCA},
		},
		Authorization: kubeletv1beta1.KubeletAuthorization{Mode: kubeletv1beta1.KubeletAuthorizationModeWebhook},
		Logging:       *logging.KubeConfig(),
	}
	if c.ClusterDNS.IsValid() {
		kc.ClusterDNS = []string{c.ClusterDNS.String()}
	}
	return kc
}

// Args returns the kubelet command-line flags.
func (c Config) Args() []string {
	args := []string{
		"--config=" + c.configPath(),
		"--kubeconfig=" + c.Kubeconfig,
		"--root-dir=" + c.RootDir,
		"--cert-dir=" + c.certDir(),
		"--hostname-override=" + c.NodeName,
		"--node-ip=" + c.NodeIP.String(),
	}
	if c.BootstrapKubeconfig != "" {
		args = append(args, "--bootstrap-kubeconfig="+c.BootstrapKubeconfig)
	}
	if c.ExternalAddresses {
		// The server's node-addresses controller (server/nodeaddr) sets
		// InternalIP and ExternalIP; kubelet keeps its hands off them.
		args = append(args, "--cloud-provider=external")
	}
	if len(c.NodeLabels) > 0 {
		args = append(args, "--node-labels="+strings.Join(c.NodeLabels, ","))
	}
	for _, a := range c.ExtraArgs {
		args = append(args, "--"+a)
	}
	return args
}

// WriteConfig writes the kubelet config file and creates its directories.
func (c Config) WriteConfig() error {
	for _, d := range []string{c.RootDir, filepath.Join(c.RootDir, "pod-logs"), filepath.Join(c.RootDir, "pki")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
	}
	data, err := yaml.Marshal(c.KubeletConfiguration())
	if err != nil {
		return fmt.Errorf("marshal kubelet config: %w", err)
	}
	return fsutil.WriteFileAtomic(c.configPath(), data, 0o600)
}

// ResolvConf returns the resolv.conf pods should inherit: the host's,
// unless it points at a loopback stub resolver (systemd-resolved), which
// pods cannot reach; then the upstream list systemd-resolved keeps.
func ResolvConf() string {
	const host, resolved = "/etc/resolv.conf", "/run/systemd/resolve/resolv.conf"
	data, err := os.ReadFile(host)
	if err != nil || !hasLoopbackNameserver(data) {
		return host
	}
	if _, err := os.Stat(resolved); err == nil {
		return resolved
	}
	return host
}

func hasLoopbackNameserver(data []byte) bool {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "nameserver" {
			if ip, err := netip.ParseAddr(f[1]); err == nil && ip.IsLoopback() {
				return true
			}
		}
	}
	return false
}

func ptr[T any](v T) *T { return &v }
