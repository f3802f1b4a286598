// Package config holds the iks configuration: the typed settings, their
// defaults, loading of /etc/iks/config.yaml (whose keys mirror the flags;
// flags win) and validation, done in one place before anything is written.
package config

import (
	"net/netip"
	"path/filepath"
	"time"

	"github.com/iks-dev/iks/internal/lbpool"
)

// Defaults.
const (
	DefaultConfigFile      = "/etc/iks/config.yaml"
	DefaultDataDir         = "/var/lib/iks"
	DefaultClusterCIDR     = "172.30.0.0/16"
	DefaultServiceCIDR     = "172.21.0.0/16"
	DefaultClusterDomain   = "cluster.local"
	DefaultIPAMBlockSize   = 26
	DefaultAdminKubeconfig = "/etc/iks/iks.yaml"
	APIServerPort          = 6443
	KubeletPort            = 10250
	// DefaultGracefulRestartTime is the BGP graceful restart time (as
	// Calico's).
	DefaultGracefulRestartTime = 120 * time.Second
	// DefaultEncapsulation is IKS's cross-subnet encapsulation.
	DefaultEncapsulation = "CrossSubnet"
)

// Server is the validated configuration of `iks server`.
type Server struct {
	DataDir       string
	NodeIP        netip.Addr
	NodeName      string
	BindAddress   netip.Addr
	ClusterCIDR   netip.Prefix
	ServiceCIDR   netip.Prefix
	ClusterDomain string
	// IPAMBlockSize is the prefix length of the pod-range blocks nodes
	// claim (IPAMBlock objects).
	IPAMBlockSize int
	DisableAgent  bool
	TLSSANs       []string
	// AdminKubeconfig is where a copy of the admin kubeconfig is written
	// ("" disables the copy).
	AdminKubeconfig string
	// Token is the --token value ("" for a random server token).
	Token string
	// Disable lists add-on manifests not to deploy (--disable).
	Disable []string
	// PortableSubnets are the LoadBalancer IP pools, public then private,
	// in flag order.
	PortableSubnets []lbpool.Subnet
	// Datastore is the etcd configuration (snapshots, cluster reset).
	Datastore Datastore
	// HA is the multi-server configuration.
	HA    HA
	Agent Agent
	Debug bool
	// Extra flags (--flag=value) for the embedded control-plane
	// components, after iks's own (so they win).
	APIServerArgs, ControllerManagerArgs, SchedulerArgs []string
}

// Agent is the node part shared by `iks server` (its local agent) and,
// later, `iks agent`.
type Agent struct {
	DataDir     string
	NodeIP      netip.Addr
	NodeName    string
	NodeLabels  []string
	KubeletArgs []string
	// CgroupRoot is the cgroup under which kubelet puts pods ("/" default).
	CgroupRoot    string
	ClusterDomain string
	ServiceCIDR   netip.Prefix
	ClusterCIDR   netip.Prefix
	// ProxyMode is kube-proxy's backend as asked (auto is resolved at start).
	ProxyMode ProxyMode
	// GracefulRestartTime is the BGP graceful restart time (0 = off).
	GracefulRestartTime time.Duration
	// Encapsulation is the routing agent's mode: CrossSubnet, Always or
	// Never.
	Encapsulation string
	// PublicIP is the node's public side (invalid: a private-only worker).
	PublicIP netip.Addr
	// Zone is the node's zone.
	Zone  string
	Debug bool
	// Host is what the start-up checks found on this host (CheckHost);
	// the daemon logs the fallbacks it takes.
	Host []HostCheck
}

// ClusterDNS is the cluster DNS (kube-dns Service) address of the node's
// cluster: .10 of the service range, as in IKS and kubeadm.
func (a Agent) ClusterDNS() netip.Addr { return ClusterDNSIP(a.ServiceCIDR) }

// ClusterDNSIP returns the address 10 above the network address of the
// service range (172.21.0.10 for 172.21.0.0/16); the range is at least a
// /28, so it always lies inside. An unset or IPv6 range gives the zero
// Addr.
func ClusterDNSIP(serviceCIDR netip.Prefix) netip.Addr {
	if !serviceCIDR.IsValid() || !serviceCIDR.Addr().Is4() {
		return netip.Addr{}
	}
	a := serviceCIDR.Masked().Addr().As4()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v += 10
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// Paths derived from the data dir. Everything iks writes lives below it,
// except the admin kubeconfig copy and the few paths kubelet hard-codes.
type Paths struct{ Root string }

// ServerDir holds control-plane state.
func (p Paths) ServerDir() string { return filepath.Join(p.Root, "server") }

// TLSDir holds the cluster PKI.
func (p Paths) TLSDir() string { return filepath.Join(p.Root, "server", "tls") }

// CredDir holds kubeconfigs of control-plane components.
func (p Paths) CredDir() string { return filepath.Join(p.Root, "server", "cred") }

// EtcdDir holds the etcd database.
func (p Paths) EtcdDir() string { return filepath.Join(p.Root, "server", "db", "etcd") }

// SnapshotDir holds the etcd snapshots.
func (p Paths) SnapshotDir() string { return filepath.Join(p.Root, "server", "db", "snapshots") }

// AgentDir holds node state.
func (p Paths) AgentDir() string { return filepath.Join(p.Root, "agent") }

// BinDir holds the staged binaries (runc, crictl, portmap) and the symlinks
// to iks (containerd shim, CNI plugin).
func (p Paths) BinDir() string { return filepath.Join(p.Root, "bin") }

// ImagesDir is scanned for *.tar image archives to import at start (k3s
// convention: <data-dir>/agent/images).
func (p Paths) ImagesDir() string { return filepath.Join(p.Root, "agent", "images") }

// RoutingSocket is the routing agent's status socket (`iks net status`).
func (p Paths) RoutingSocket() string { return filepath.Join(p.RunDir(), "routing.sock") }

// RunDir holds sockets and volatile state (containerd state, pid files).
func (p Paths) RunDir() string { return filepath.Join(p.Root, "run") }

// ArgsDir holds the command line each embedded component last started
// with (component.WriteArgs).
func (p Paths) ArgsDir() string { return filepath.Join(p.RunDir(), "args") }

// ContainerdSocket is the CRI / containerd API socket.
func (p Paths) ContainerdSocket() string {
	return filepath.Join(p.RunDir(), "containerd", "containerd.sock")
}

// LockFile keeps two iks processes off one data dir.
func (p Paths) LockFile() string { return filepath.Join(p.RunDir(), "iks.lock") }

// AdminKubeconfig is the admin kubeconfig inside the data dir.
func (p Paths) AdminKubeconfig() string { return filepath.Join(p.CredDir(), "admin.kubeconfig") }

// TLSCipherSuites are the TLS 1.2 cipher suites kube-apiserver and
// kubelet accept (TLS 1.3's are Go's, always strong): ECDHE with AEAD
// only, as the CIS benchmark (1.2.29, 4.2.12) and k3s's defaults.
var TLSCipherSuites = []string{
	"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
	"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
	"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
}
