// Package config holds the iks configuration: the typed settings, their
// defaults, loading of /etc/iks/config.yaml (whose keys mirror the flags;
// flags win) and validation, done in one place before anything is written.
package config

import (
	"net/netip"
	"path/filepath"

	"github.com/iks-dev/iks/internal/lbpool"
)

// Defaults.
const (
	DefaultConfigFile      = "/etc/iks/config.yaml"
	DefaultDataDir         = "/var/lib/iks"
	DefaultClusterCIDR     = "172.30.0.0/16"
	DefaultServiceCIDR     = "172.21.0.0/16"
	DefaultClusterDomain   = "cluster.local"
	DefaultAdminKubeconfig = "/etc/iks/iks.yaml"
	APIServerPort          = 6443
	KubeletPort            = 10250
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
	DisableAgent  bool
	TLSSANs       []string
	// AdminKubeconfig is where a copy of the admin kubeconfig is written
	// ("" disables the copy).
	AdminKubeconfig string
	// Token is the --token value ("" for a random server token).
	Token string
	// PortableSubnets are the LoadBalancer IP pools, public then private,
	// in flag order.
	PortableSubnets []lbpool.Subnet
	Agent           Agent
	Debug           bool
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
	Debug     bool
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

// AgentDir holds node state.
func (p Paths) AgentDir() string { return filepath.Join(p.Root, "agent") }

// BinDir holds the staged binaries (runc, crictl, portmap) and the symlinks
// to iks (containerd shim, CNI plugin).
func (p Paths) BinDir() string { return filepath.Join(p.Root, "bin") }

// ImagesDir is scanned for *.tar image archives to import at start (k3s
// convention: <data-dir>/agent/images).
func (p Paths) ImagesDir() string { return filepath.Join(p.Root, "agent", "images") }

// RunDir holds sockets and volatile state (containerd state, pid files).
func (p Paths) RunDir() string { return filepath.Join(p.Root, "run") }

// ContainerdSocket is the CRI / containerd API socket.
func (p Paths) ContainerdSocket() string {
	return filepath.Join(p.RunDir(), "containerd", "containerd.sock")
}

// LockFile keeps two iks processes off one data dir.
func (p Paths) LockFile() string { return filepath.Join(p.RunDir(), "iks.lock") }

// AdminKubeconfig is the admin kubeconfig inside the data dir.
func (p Paths) AdminKubeconfig() string { return filepath.Join(p.CredDir(), "admin.kubeconfig") }
