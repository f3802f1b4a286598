// Package pki creates and maintains the cluster PKI of `iks server`.
//
// [Ensure] creates, once, every certificate authority, certificate and key
// the control plane and the server's local node need, in one directory
// (normally <data-dir>/server/tls), and reuses them byte-for-byte on every
// later start. Leaf certificates are re-issued by the same CA when they are
// missing or damaged, expire within 90 days, or lack a requested name; the
// three CAs and the service-account key are never regenerated: a damaged or
// half-present CA is an error that names the file to restore.
//
// All keys are ECDSA P-256; CAs are valid for 10 years, leaves for 1 year.
// Directories are 0700, keys 0600, certificates 0644, and every file is
// written atomically.
//
// How the files map to component flags:
//
//	kube-apiserver
//	  --client-ca-file                       CACert
//	  --tls-cert-file / --tls-private-key-file            APIServerChainCert / APIServerKey
//	  --kubelet-certificate-authority        CACert
//	  --kubelet-client-certificate / -key    APIServerKubeletClientCert / APIServerKubeletClientKey
//	  --etcd-cafile / --etcd-certfile / --etcd-keyfile    EtcdCACert / APIServerEtcdClientCert / APIServerEtcdClientKey
//	  --requestheader-client-ca-file         FrontProxyCACert (allowed name "front-proxy-client")
//	  --proxy-client-cert-file / -key-file   FrontProxyClientCert / FrontProxyClientKey
//	  --service-account-key-file             ServiceAccountPub
//	  --service-account-signing-key-file     ServiceAccountKey
//	kube-controller-manager
//	  --cluster-signing-cert-file / -key-file             CACert / CAKey
//	  --root-ca-file                         CACert
//	  --service-account-private-key-file     ServiceAccountKey
//	  kubeconfig                             ControllerManagerCert / ControllerManagerKey
//	kube-scheduler kubeconfig                SchedulerCert / SchedulerKey
//	etcd (client and peer TLS, client cert auth on, trusted CA EtcdCACert)
//	  server                                 EtcdServerCert / EtcdServerKey
//	  peer                                   EtcdPeerCert / EtcdPeerKey
//	kubelet (server's own node)
//	  --client-ca-file                       CACert
//	  --tls-cert-file / --tls-private-key-file            KubeletServingCert / KubeletServingKey
//	  kubeconfig                             KubeletClientCert / KubeletClientKey
//	kube-proxy kubeconfig                    KubeProxyCert / KubeProxyKey
//	admin kubeconfig (/etc/iks/iks.yaml)     AdminCert / AdminKey, via [WriteEmbeddedKubeconfig]
package pki

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Lifetimes.
const (
	caValidity   = 10 * 365 * 24 * time.Hour
	leafValidity = 365 * 24 * time.Hour
	renewBefore  = 90 * 24 * time.Hour // re-issue leaves this long before expiry
	backdate     = 5 * time.Minute     // NotBefore slack for clock skew between nodes
)

// DefaultClusterDomain is used when Options.ClusterDomain is empty.
const DefaultClusterDomain = "cluster.local"

// Options configures [Ensure].
type Options struct {
	// Dir holds the PKI, e.g. /var/lib/iks/server/tls. Created 0700.
	Dir string
	// NodeName is the server's own node name, used in the apiserver and etcd
	// SANs and for the local kubelet's certificates.
	NodeName string
	// NodeIPs are the server's addresses: SANs of the apiserver, etcd and
	// local kubelet serving certificates.
	NodeIPs []net.IP
	// ServiceIP is the first IP of the service CIDR, the ClusterIP of
	// kubernetes.default. Required.
	ServiceIP net.IP
	// ExtraSANs are extra DNS names or IPs for the apiserver certificate
	// (--tls-san).
	ExtraSANs []string
	// ClusterDomain defaults to DefaultClusterDomain.
	ClusterDomain string
	// Logger defaults to slog.Default(); a "component=pki" attribute is added.
	Logger *slog.Logger
	// LeafValidity is the lifetime of newly issued leaf certificates
	// (default 1 year). Shorter lifetimes are for tests: a leaf within 90
	// days of expiry is re-issued at every start.
	LeafValidity time.Duration
}

// normalized is a validated copy of Options.
type normalized struct {
	dir           string
	nodeName      string
	nodeIPs       []net.IP
	serviceIP     net.IP
	extraDNS      []string
	extraIPs      []net.IP
	clusterDomain string
	validity      time.Duration
	log           *slog.Logger
}

func (o Options) normalize() (*normalized, error) {
	if o.Dir == "" {
		return nil, fmt.Errorf("PKI directory is empty: set the data dir")
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, fmt.Errorf("PKI directory %q: %w", o.Dir, err)
	}
	if err := validateNodeName(o.NodeName); err != nil {
		return nil, err
	}
	if o.ServiceIP == nil || o.ServiceIP.IsUnspecified() {
		return nil, fmt.Errorf("service IP %q is not set: pass the first IP of the service CIDR (e.g. 172.21.0.1)", o.ServiceIP)
	}
	for i, ip := range o.NodeIPs {
		if ip == nil || ip.IsUnspecified() {
			return nil, fmt.Errorf("node IP #%d %q is not a usable address: pass the node's real IPs", i+1, ip)
		}
	}
	domain := o.ClusterDomain
	if domain == "" {
		domain = DefaultClusterDomain
	}
	if errs := validation.IsDNS1123Subdomain(domain); len(errs) > 0 {
		return nil, fmt.Errorf("cluster domain %q is invalid: %s; use a DNS name such as %s",
			domain, strings.Join(errs, "; "), DefaultClusterDomain)
	}
	extraDNS, extraIPs, err := splitExtraSANs(o.ExtraSANs)
	if err != nil {
		return nil, err
	}
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	return &normalized{
		dir: dir, nodeName: o.NodeName, nodeIPs: slices.Clone(o.NodeIPs), serviceIP: o.ServiceIP,
		extraDNS: extraDNS, extraIPs: extraIPs, clusterDomain: domain, validity: o.LeafValidity,
		log: log.With("component", "pki"),
	}, nil
}

// PKI holds the paths of every file [Ensure] maintains (each field is an
// absolute path) and issues further certificates from the cluster CA. Its
// methods are safe for concurrent use.
type PKI struct {
	Dir string

	CACert, CAKey                                         string // cluster CA (also the controller-manager's signing CA)
	FrontProxyCACert, FrontProxyCAKey                     string // front-proxy (aggregation layer) CA
	FrontProxyClientCert, FrontProxyClientKey             string // CN front-proxy-client
	EtcdCACert, EtcdCAKey                                 string // etcd CA
	EtcdServerCert, EtcdServerKey                         string // etcd client listener, server+client auth
	EtcdPeerCert, EtcdPeerKey                             string // etcd peer listener, server+client auth
	APIServerEtcdClientCert, APIServerEtcdClientKey       string // CN kube-apiserver-etcd-client, etcd CA
	APIServerCert, APIServerKey                           string // kube-apiserver serving
	APIServerChainCert                                    string // APIServerCert followed by the cluster CA certificate: serve this
	APIServerKubeletClientCert, APIServerKubeletClientKey string // CN kube-apiserver-kubelet-client, O system:masters
	ServiceAccountKey, ServiceAccountPub                  string // service-account token signing key pair
	AdminCert, AdminKey                                   string // CN admin, O system:masters
	ControllerManagerCert, ControllerManagerKey           string // CN system:kube-controller-manager
	SchedulerCert, SchedulerKey                           string // CN system:kube-scheduler
	KubeProxyCert, KubeProxyKey                           string // CN system:kube-proxy
	KubeletClientCert, KubeletClientKey                   string // local node: CN system:node:<node>, O system:nodes
	KubeletServingCert, KubeletServingKey                 string // local node: serving, SANs node name + node IPs

	mu       sync.Mutex // serialises issuing
	validity time.Duration
	ca       *authority
	now      func() time.Time
	log      *slog.Logger
}

// Ensure creates the PKI in opts.Dir, or loads and refreshes the existing
// one. Before anything is written, all CAs and the service-account key are
// checked, so a damaged CA fails the call without touching the directory.
func Ensure(opts Options) (*PKI, error) {
	return ensure(opts, time.Now)
}

func ensure(opts Options, clock func() time.Time) (*PKI, error) {
	o, err := opts.normalize()
	if err != nil {
		return nil, err
	}
	p := newPaths(o.dir, o.nodeName)
	p.now, p.log, p.validity = clock, o.log, o.validity
	now := clock()

	// Phase 1: load or generate in memory; write nothing.
	if p.ca, err = loadCA("cluster CA", "iks-ca", p.CACert, p.CAKey, now, p.log); err != nil {
		return nil, err
	}
	fp, err := loadCA("front-proxy CA", "iks-front-proxy-ca", p.FrontProxyCACert, p.FrontProxyCAKey, now, p.log)
	if err != nil {
		return nil, err
	}
	etcd, err := loadCA("etcd CA", "iks-etcd-ca", p.EtcdCACert, p.EtcdCAKey, now, p.log)
	if err != nil {
		return nil, err
	}
	sa, err := loadSAKey(p.ServiceAccountKey, p.ServiceAccountPub)
	if err != nil {
		return nil, err
	}

	// Phase 2: write new CAs and keys, then make every leaf current.
	for _, d := range []string{p.Dir, filepath.Dir(p.EtcdCACert)} {
		if err := ensureDir(d, p.log); err != nil {
			return nil, err
		}
	}
	for _, a := range []*authority{p.ca, fp, etcd} {
		if err := a.persist(p.log); err != nil {
			return nil, err
		}
	}
	if err := sa.persist(p.log); err != nil {
		return nil, err
	}
	for _, s := range p.controlPlaneLeaves(o, fp, etcd) {
		s.validity = o.validity
		if err := ensureLeaf(s, now, p.log); err != nil {
			return nil, err
		}
	}
	if err := p.ensureAPIServerChain(p.log); err != nil {
		return nil, err
	}
	if _, _, err := p.IssueKubeletClient(o.nodeName); err != nil {
		return nil, err
	}
	if _, _, err := p.IssueKubeletServing(o.nodeName, o.nodeIPs); err != nil {
		return nil, err
	}
	// Certificates written by an older iks (0644) follow the current mode.
	for _, d := range []string{p.Dir, filepath.Dir(p.EtcdCACert)} {
		if err := tightenFiles(d, p.log); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// CACertPEM returns the content of CACert: the PEM bundle clients use to
// trust the apiserver and kubelets. The caller may modify the returned slice.
func (p *PKI) CACertPEM() []byte {
	return slices.Clone(p.ca.certPEM)
}

// CAHash returns the lowercase hex SHA-256 of the cluster CA certificate's
// DER encoding, used to pin the CA in join tokens (K10<hash>::...).
func (p *PKI) CAHash() string {
	sum := sha256.Sum256(p.ca.cert.Raw)
	return hex.EncodeToString(sum[:])
}
