package server

import (
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/iks-dev/iks/internal/config"
	"github.com/iks-dev/iks/server/pki"
)

// apiURL is how local components reach the apiserver.
func apiURL(cfg *config.Server) string {
	host := "127.0.0.1"
	if !cfg.BindAddress.IsUnspecified() && !cfg.BindAddress.IsLoopback() {
		host = cfg.BindAddress.String()
	}
	return fmt.Sprintf("https://%s:%d", host, config.APIServerPort)
}

// ensureCerts creates (once) and refreshes the PKI and writes the
// kubeconfigs of the control-plane components, the local kubelet and the
// admin.
func ensureCerts(cfg *config.Server) (*pki.PKI, error) {
	c := struct{ cfg *config.Server }{cfg}
	p := c.cfg.Paths()
	svcIP := c.cfg.ServiceCIDR.Addr().Next()
	var nodeIPs []net.IP
	if c.cfg.NodeIP.IsValid() {
		nodeIPs = append(nodeIPs, net.IP(c.cfg.NodeIP.AsSlice()))
	}
	if !c.cfg.BindAddress.IsUnspecified() && c.cfg.BindAddress != c.cfg.NodeIP {
		nodeIPs = append(nodeIPs, net.IP(c.cfg.BindAddress.AsSlice()))
	}
	validity, err := leafValidity()
	if err != nil {
		return nil, err
	}
	k, err := pki.Ensure(pki.Options{Dir: p.TLSDir(), NodeName: c.cfg.NodeName, NodeIPs: nodeIPs,
		ServiceIP: net.IP(svcIP.AsSlice()), ExtraSANs: c.cfg.TLSSANs, ClusterDomain: c.cfg.ClusterDomain,
		LeafValidity: validity})
	if err != nil {
		return nil, fmt.Errorf("cluster PKI: %w", err)
	}
	if err := os.MkdirAll(p.CredDir(), 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", p.CredDir(), err)
	}
	url := apiURL(c.cfg)
	ca := k.CACertPEM()
	for _, kc := range []struct{ name, cert, key string }{
		{"admin", k.AdminCert, k.AdminKey},
		{"controller-manager", k.ControllerManagerCert, k.ControllerManagerKey},
		{"scheduler", k.SchedulerCert, k.SchedulerKey},
		{"kube-proxy", k.KubeProxyCert, k.KubeProxyKey},
		{"kubelet", k.KubeletClientCert, k.KubeletClientKey},
	} {
		if err := pki.WriteKubeconfig(filepath.Join(p.CredDir(), kc.name+".kubeconfig"), url, ca, kc.cert, kc.key); err != nil {
			return nil, err
		}
	}
	if c.cfg.AdminKubeconfig != "" {
		if err := os.MkdirAll(filepath.Dir(c.cfg.AdminKubeconfig), 0o755); err != nil {
			return nil, fmt.Errorf("create %s: %w", filepath.Dir(c.cfg.AdminKubeconfig), err)
		}
		if err := pki.WriteEmbeddedKubeconfig(c.cfg.AdminKubeconfig, url, ca, k.AdminCert, k.AdminKey); err != nil {
			return nil, err
		}
	}
	return k, nil
}

func kubeconfigPath(cfg *config.Server, name string) string {
	return filepath.Join(cfg.Paths().CredDir(), name+".kubeconfig")
}
