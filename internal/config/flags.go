package config

import (
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/iks-dev/iks/manifests"
)

// ServerFlags are the raw values of `iks server` flags (and of the config
// file keys, which are the flag names). Validate turns them into a Server.
type ServerFlags struct {
	ConfigFile    string
	DataDir       string
	NodeIP        string
	NodeName      string
	BindAddress   string
	ClusterCIDR   string
	ServiceCIDR   string
	ClusterDomain string
	IPAMBlockSize int
	DisableAgent  bool
	Debug         bool
	TLSSANs       []string
	NodeLabels    []string
	KubeletArgs   []string
	// Extra flags of the embedded control-plane components (key=value).
	APIServerArgs         []string
	ControllerManagerArgs []string
	SchedulerArgs         []string
	CgroupRoot            string
	WriteKubeconfig       string
	Token                 string
	Disable               []string
	// PortablePublic and PortablePrivate are CIDR[@VLAN] values.
	PortablePublic  []string
	PortablePrivate []string
	ProxyMode       string
	Network         NetworkFlags
	Datastore       DatastoreFlags
	HA              HAFlags
}

// AddFlags registers the server flags on fs.
func (f *ServerFlags) AddFlags(fs *pflag.FlagSet) {
	fs.StringVarP(&f.ConfigFile, "config", "c", DefaultConfigFile, "config file whose keys are these flag names (flags win)")
	fs.StringVarP(&f.DataDir, "data-dir", "d", DefaultDataDir, "directory for all state")
	fs.StringVar(&f.NodeIP, "node-ip", "", "IPv4 address of this node (default: the address of the default-route interface)")
	fs.StringVar(&f.NodeName, "node-name", "", "node name (default: the host name)")
	fs.StringVar(&f.BindAddress, "bind-address", "0.0.0.0", "address the apiserver listens on")
	fs.StringVar(&f.ClusterCIDR, "cluster-cidr", DefaultClusterCIDR, "pod network range")
	fs.StringVar(&f.ServiceCIDR, "service-cidr", DefaultServiceCIDR, "service ClusterIP range")
	fs.IntVar(&f.IPAMBlockSize, "ipam-block-size", DefaultIPAMBlockSize, "prefix length of the pod-range blocks nodes claim (20-30; fixed when the cluster is created)")
	fs.StringVar(&f.ClusterDomain, "cluster-domain", DefaultClusterDomain, "cluster DNS domain")
	fs.BoolVar(&f.DisableAgent, "disable-agent", false, "run the control plane only, no local node")
	fs.BoolVar(&f.Debug, "debug", false, "verbose logs, including the embedded Kubernetes components")
	fs.StringSliceVar(&f.TLSSANs, "tls-san", nil, "extra DNS name or IP for the apiserver certificate (repeatable)")
	fs.StringSliceVar(&f.NodeLabels, "node-label", nil, "label key=value for this node (repeatable)")
	fs.StringArrayVar(&f.KubeletArgs, "kubelet-arg", nil, "extra kubelet flag as key=value (repeatable)")
	fs.StringArrayVar(&f.APIServerArgs, "kube-apiserver-arg", nil, "extra kube-apiserver flag as key=value (repeatable; wins over iks's)")
	fs.StringArrayVar(&f.ControllerManagerArgs, "kube-controller-manager-arg", nil, "extra kube-controller-manager flag as key=value (repeatable; wins over iks's)")
	fs.StringArrayVar(&f.SchedulerArgs, "kube-scheduler-arg", nil, "extra kube-scheduler flag as key=value (repeatable; wins over iks's)")
	fs.StringVar(&f.CgroupRoot, "cgroup-root", "/", "cgroup under which kubelet places pods")
	fs.StringVarP(&f.Token, "token", "t", os.Getenv("IKS_TOKEN"), "shared secret agents join with (default: random, kept in <data-dir>/server/token; env IKS_TOKEN)")
	fs.StringSliceVar(&f.Disable, "disable", nil, "do not deploy this add-on, and delete it if deployed before (repeatable; add-ons: "+strings.Join(manifests.Names(), ", ")+")")
	fs.StringArrayVar(&f.PortablePublic, "portable-public-subnet", nil, "portable public subnet CIDR[@VLAN] for LoadBalancer IPs (repeatable; /29 or larger: 3 reserved, 1 ALB, the rest for services)")
	fs.StringArrayVar(&f.PortablePrivate, "portable-private-subnet", nil, "portable private subnet CIDR[@VLAN] for private LoadBalancer IPs (repeatable)")
	addProxyModeFlag(fs, &f.ProxyMode)
	f.Network.AddFlags(fs)
	f.Datastore.AddFlags(fs)
	f.HA.AddFlags(fs)
	fs.StringVar(&f.WriteKubeconfig, "write-kubeconfig", DefaultAdminKubeconfig, "where to copy the admin kubeconfig (\"\" to skip)")
}
