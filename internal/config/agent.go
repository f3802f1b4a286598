package config

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/iks-dev/iks/internal/lock"
	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/validation"
)

// AgentFlags are the raw values of `iks agent` flags (and config keys).
type AgentFlags struct {
	ConfigFile  string
	Server      string
	Token       string
	DataDir     string
	NodeIP      string
	NodeName    string
	NodeLabels  []string
	KubeletArgs []string
	CgroupRoot  string
	ClusterCIDR string
	// ClusterDomain must match the server's --cluster-domain.
	ClusterDomain string
	ServiceCIDR   string
	ProxyMode     string
	Network       NetworkFlags
	Debug         bool
	// WithNodeID appends a stable random id to the node name.
	WithNodeID bool
}

// AddFlags registers the agent flags on fs; --server and --token default
// to $IKS_URL and $IKS_TOKEN.
func (f *AgentFlags) AddFlags(fs *pflag.FlagSet) {
	fs.StringVarP(&f.ConfigFile, "config", "c", DefaultConfigFile, "config file whose keys are these flag names (flags win)")
	fs.StringVarP(&f.Server, "server", "s", os.Getenv("IKS_URL"), "server to join, https://HOST:6443 (env IKS_URL)")
	fs.StringVarP(&f.Token, "token", "t", os.Getenv("IKS_TOKEN"), "join token from the server's <data-dir>/server/token or `iks token create` (env IKS_TOKEN)")
	fs.StringVarP(&f.DataDir, "data-dir", "d", DefaultDataDir, "directory for all state")
	fs.StringVar(&f.NodeIP, "node-ip", "", "IPv4 address of this node (default: the address of the default-route interface)")
	fs.StringVar(&f.NodeName, "node-name", "", "node name (default: the host name)")
	fs.StringSliceVar(&f.NodeLabels, "node-label", nil, "label key=value for this node (repeatable)")
	fs.StringArrayVar(&f.KubeletArgs, "kubelet-arg", nil, "extra kubelet flag as key=value (repeatable)")
	fs.StringVar(&f.CgroupRoot, "cgroup-root", "/", "cgroup under which kubelet places pods")
	fs.StringVar(&f.ClusterCIDR, "cluster-cidr", DefaultClusterCIDR, "the cluster's pod range (must match the server's --cluster-cidr)")
	fs.StringVar(&f.ClusterDomain, "cluster-domain", DefaultClusterDomain, "the cluster's DNS domain (must match the server's --cluster-domain)")
	fs.StringVar(&f.ServiceCIDR, "service-cidr", DefaultServiceCIDR, "the cluster's service range (must match the server's --service-cidr)")
	addProxyModeFlag(fs, &f.ProxyMode)
	f.Network.AddFlags(fs)
	fs.BoolVar(&f.Debug, "debug", false, "verbose logs, including the embedded Kubernetes components")
	fs.BoolVar(&f.WithNodeID, "with-node-id", false, "append a random id, made once and kept in the data dir, to the node name (for machines sharing a host name, e.g. cloned VMs)")
}

// Joining is the validated configuration of `iks agent`.
type Joining struct {
	Agent
	ServerURL *url.URL
	Token     string // validated by the bootstrap code, which owns its format
	// NewNodeID is the id --with-node-id made on this first start: record
	// it with SaveNodeID before using the name.
	NewNodeID string
}

// Validate checks the agent values and the host; it writes nothing.
func (f *AgentFlags) Validate(env Env) (*Joining, error) {
	if env.EUID() != 0 {
		return nil, errors.New("iks agent must run as root: it manages containers, cgroups and the network (try: sudo iks agent ...)")
	}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	j := &Joining{Token: strings.TrimSpace(f.Token)}
	u, err := url.Parse(f.Server)
	switch {
	case f.Server == "":
		bad("--server is required: the URL of the iks server, for example https://10.0.0.1:6443 (or set IKS_URL)")
	case err != nil || u.Scheme != "https" || u.Hostname() == "" || u.Path != "" && u.Path != "/":
		bad("--server %q is not an https URL such as https://10.0.0.1:6443", f.Server)
	default:
		if u.Port() == "" {
			u.Host = fmt.Sprintf("%s:%d", u.Hostname(), APIServerPort)
		}
		u.Path = ""
		j.ServerURL = u
	}
	if j.Token == "" {
		bad("--token is required: copy it from the server's <data-dir>/server/token or create one there with `iks token create` (or set IKS_TOKEN)")
	}
	dataDir := filepath.Clean(f.DataDir)
	if !filepath.IsAbs(f.DataDir) {
		bad("--data-dir %q must be an absolute path (for example /var/lib/iks)", f.DataDir)
	} else if err := env.Writable(dataDir); err != nil {
		bad("--data-dir %q cannot be used: %v; choose a writable directory on a local disk", f.DataDir, err)
	}
	local, err := env.LocalAddrs()
	if err != nil {
		bad("cannot list this host's addresses: %v", err)
	}
	nodeIP := pickNodeIP(bad, f.NodeIP, local)
	name := f.NodeName
	if name == "" {
		h, err := env.Hostname()
		if err != nil {
			bad("cannot read the host name (%v); pass --node-name", err)
		}
		name = strings.ToLower(h)
	}
	if f.WithNodeID && filepath.IsAbs(f.DataDir) {
		id, fresh, err := nodeID(dataDir)
		if err != nil {
			bad("--with-node-id: %v", err)
		}
		name += "-" + id
		if fresh {
			j.NewNodeID = id
		}
	}
	if e := validation.IsDNS1123Subdomain(name); len(e) > 0 {
		bad("node name %q is not a valid Kubernetes node name (%s); pass --node-name with lower-case letters, digits, '-' and '.'", name, strings.Join(e, "; "))
	}
	validateNodeExtras(bad, f.NodeLabels, f.KubeletArgs, f.CgroupRoot)
	f.Network.validate(bad)
	cluster, _ := parseCIDR(bad, "--cluster-cidr", f.ClusterCIDR, 8, 24)
	service, _ := parseCIDR(bad, "--service-cidr", f.ServiceCIDR, 12, 28)
	proxyMode := parseProxyMode(bad, f.ProxyMode)
	publicIP, zone := f.Network.Topology.validate(bad, env, local, cluster, service)
	if e := validation.IsDNS1123Subdomain(f.ClusterDomain); len(e) > 0 {
		bad("--cluster-domain %q is not a valid DNS domain (%s); pass the server's --cluster-domain, for example cluster.local", f.ClusterDomain, strings.Join(e, "; "))
	}
	var host []HostCheck
	if len(errs) == 0 {
		if err := lock.Check(Paths{dataDir}.LockFile()); err != nil {
			errs = append(errs, err)
		}
		s := &Server{BindAddress: nodeIP, DisableAgent: false}
		errs = append(errs, checkKernel(env, s)...)
		host = s.Agent.Host
		if err := env.PortFree(nodeIP, KubeletPort); err != nil {
			errs = append(errs, fmt.Errorf("port %d (kubelet) is in use: %v; is another iks agent or server running here?", KubeletPort, err))
		}
		loop := netip.MustParseAddr("127.0.0.1")
		for _, p := range []int{ProxyHealthzPort, ProxyMetricsPort} {
			if err := env.PortFree(loop, p); err != nil {
				errs = append(errs, fmt.Errorf("port %d on 127.0.0.1 (kube-proxy) is in use: %v; is another kube-proxy, iks agent or server running here?", p, err))
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	j.Agent = Agent{DataDir: dataDir, NodeIP: nodeIP, NodeName: name, NodeLabels: f.NodeLabels,
		KubeletArgs: f.KubeletArgs, CgroupRoot: f.CgroupRoot, ClusterDomain: f.ClusterDomain, Debug: f.Debug,
		ClusterCIDR: cluster, ServiceCIDR: service, ProxyMode: proxyMode,
		GracefulRestartTime: f.Network.GracefulRestartTime, Encapsulation: f.Network.Encapsulation,
		PublicIP: publicIP, Zone: zone, Host: host}
	return j, nil
}
