package pki

import (
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/iks-dev/iks/internal/api"
)

// Kubernetes identities.
const (
	groupMasters = "system:masters"
	groupNodes   = api.NodesGroup
	nodeUserPfx  = api.NodeUserPrefix
)

// reservedNames are the base names of files Ensure owns; IssueClientCert
// refuses them (and the "kubelet-" prefix) so it can never clobber them.
var reservedNames = []string{
	"ca", "front-proxy-ca", "front-proxy-client", "apiserver", apiserverChainName, "apiserver-kubelet-client",
	"apiserver-etcd-client", "sa", "admin", "controller-manager", "scheduler", "kube-proxy",
}

// kubeletPrefix starts the file names of kubelet certificates.
const kubeletPrefix = "kubelet-"

// newPaths returns a PKI whose path fields point into dir.
func newPaths(dir, nodeName string) *PKI {
	crt := func(name string) string { return filepath.Join(dir, name+".crt") }
	key := func(name string) string { return filepath.Join(dir, name+".key") }
	return &PKI{
		Dir:    dir,
		CACert: crt("ca"), CAKey: key("ca"),
		FrontProxyCACert: crt("front-proxy-ca"), FrontProxyCAKey: key("front-proxy-ca"),
		FrontProxyClientCert: crt("front-proxy-client"), FrontProxyClientKey: key("front-proxy-client"),
		EtcdCACert: crt("etcd/ca"), EtcdCAKey: key("etcd/ca"),
		EtcdServerCert: crt("etcd/server"), EtcdServerKey: key("etcd/server"),
		EtcdPeerCert: crt("etcd/peer"), EtcdPeerKey: key("etcd/peer"),
		APIServerEtcdClientCert: crt("apiserver-etcd-client"), APIServerEtcdClientKey: key("apiserver-etcd-client"),
		APIServerCert: crt("apiserver"), APIServerKey: key("apiserver"), APIServerChainCert: crt(apiserverChainName),
		APIServerKubeletClientCert: crt("apiserver-kubelet-client"), APIServerKubeletClientKey: key("apiserver-kubelet-client"),
		ServiceAccountKey: key("sa"), ServiceAccountPub: filepath.Join(dir, "sa.pub"),
		AdminCert: crt("admin"), AdminKey: key("admin"),
		ControllerManagerCert: crt("controller-manager"), ControllerManagerKey: key("controller-manager"),
		SchedulerCert: crt("scheduler"), SchedulerKey: key("scheduler"),
		KubeProxyCert: crt("kube-proxy"), KubeProxyKey: key("kube-proxy"),
		KubeletClientCert: crt(kubeletClientName(nodeName)), KubeletClientKey: key(kubeletClientName(nodeName)),
		KubeletServingCert: crt(kubeletServingName(nodeName)), KubeletServingKey: key(kubeletServingName(nodeName)),
	}
}

// kubeletClientName and kubeletServingName give distinct fixed prefixes so
// no node name can make one node's client file collide with another's
// serving file.
func kubeletClientName(node string) string  { return kubeletPrefix + "client-" + node }
func kubeletServingName(node string) string { return kubeletPrefix + "serving-" + node }

// controlPlaneLeaves lists the fixed leaf certificates of the control plane.
func (p *PKI) controlPlaneLeaves(o *normalized, fp, etcd *authority) []*leafSpec {
	api := apiserverSANs(o)
	etcdNames := etcdSANs(o)
	client := func(ca *authority, cert, key, cn string, orgs ...string) *leafSpec {
		return &leafSpec{certPath: cert, keyPath: key, ca: ca, cn: cn, orgs: orgs, client: true}
	}
	return []*leafSpec{
		client(fp, p.FrontProxyClientCert, p.FrontProxyClientKey, "front-proxy-client"),
		{certPath: p.EtcdServerCert, keyPath: p.EtcdServerKey, ca: etcd, cn: "etcd-server",
			dnsNames: etcdNames.dns, ips: etcdNames.ips, server: true, client: true},
		{certPath: p.EtcdPeerCert, keyPath: p.EtcdPeerKey, ca: etcd, cn: "etcd-peer",
			dnsNames: etcdNames.dns, ips: etcdNames.ips, server: true, client: true},
		client(etcd, p.APIServerEtcdClientCert, p.APIServerEtcdClientKey, "kube-apiserver-etcd-client"),
		{certPath: p.APIServerCert, keyPath: p.APIServerKey, ca: p.ca, cn: "kube-apiserver",
			dnsNames: api.dns, ips: api.ips, server: true},
		client(p.ca, p.APIServerKubeletClientCert, p.APIServerKubeletClientKey, "kube-apiserver-kubelet-client", groupMasters),
		client(p.ca, p.AdminCert, p.AdminKey, "admin", groupMasters),
		client(p.ca, p.ControllerManagerCert, p.ControllerManagerKey, "system:kube-controller-manager"),
		client(p.ca, p.SchedulerCert, p.SchedulerKey, "system:kube-scheduler"),
		client(p.ca, p.KubeProxyCert, p.KubeProxyKey, "system:kube-proxy"),
	}
}

// IssueClientCert makes sure <Dir>/<name>.crt and <name>.key hold a client
// certificate for user cn in groups orgs, signed by the cluster CA. It is
// created once and reused, and re-issued when it nears expiry or cn/orgs
// change. name must be a lowercase DNS-style name that is not one of the
// files Ensure owns and does not start with "kubelet-".
func (p *PKI) IssueClientCert(name, cn string, orgs []string) (certPath, keyPath string, err error) {
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
		return "", "", fmt.Errorf("client certificate name %q is invalid: %s; use a lowercase name such as \"my-controller\"",
			name, strings.Join(errs, "; "))
	}
	if slices.Contains(reservedNames, name) || strings.HasPrefix(name, kubeletPrefix) {
		return "", "", fmt.Errorf("client certificate name %q is reserved for the PKI's own files: choose another name "+
			"(use IssueKubeletClient for kubelets)", name)
	}
	if cn == "" {
		return "", "", fmt.Errorf("client certificate %q: common name (user name) is empty: pass the Kubernetes user name", name)
	}
	return p.issue(&leafSpec{
		certPath: filepath.Join(p.Dir, name+".crt"), keyPath: filepath.Join(p.Dir, name+".key"),
		ca: p.ca, cn: cn, orgs: slices.Clone(orgs), client: true,
	})
}

// IssueKubeletClient makes sure <Dir>/kubelet-client-<node>.crt/.key hold the
// node's kubelet client certificate (CN system:node:<node>, O system:nodes).
func (p *PKI) IssueKubeletClient(nodeName string) (certPath, keyPath string, err error) {
	if err := validateNodeName(nodeName); err != nil {
		return "", "", err
	}
	name := kubeletClientName(nodeName)
	return p.issue(&leafSpec{
		certPath: filepath.Join(p.Dir, name+".crt"), keyPath: filepath.Join(p.Dir, name+".key"),
		ca: p.ca, cn: nodeUserPfx + nodeName, orgs: []string{groupNodes}, client: true,
	})
}

// IssueKubeletServing makes sure <Dir>/kubelet-serving-<node>.crt/.key hold
// the node's kubelet serving certificate (CN system:node:<node>,
// O system:nodes, SANs the node name and ips), signed by the cluster CA. It
// is re-issued when a requested name or IP is missing from it.
func (p *PKI) IssueKubeletServing(nodeName string, ips []net.IP) (certPath, keyPath string, err error) {
	if err := validateNodeName(nodeName); err != nil {
		return "", "", err
	}
	for i, ip := range ips {
		if ip == nil || ip.IsUnspecified() {
			return "", "", fmt.Errorf("kubelet serving certificate for node %q: IP #%d %q is not a usable address", nodeName, i+1, ip)
		}
	}
	names := kubeletServingSANs(nodeName, ips)
	name := kubeletServingName(nodeName)
	return p.issue(&leafSpec{
		certPath: filepath.Join(p.Dir, name+".crt"), keyPath: filepath.Join(p.Dir, name+".key"),
		ca: p.ca, cn: nodeUserPfx + nodeName, orgs: []string{groupNodes},
		dnsNames: names.dns, ips: names.ips, server: true,
	})
}

// issue runs ensureLeaf under the issuing lock.
func (p *PKI) issue(s *leafSpec) (certPath, keyPath string, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s.validity = p.validity
	if err := ensureLeaf(s, p.now(), p.log); err != nil {
		return "", "", err
	}
	return s.certPath, s.keyPath, nil
}
