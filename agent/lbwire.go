package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/iks-dev/iks/agent/apilb"
	"github.com/iks-dev/iks/internal/config"
)

// newAPILB returns the agent's apiserver load balancer, starting from the
// --server address.
func newAPILB(server *url.URL, p config.Paths, log *slog.Logger) *apilb.LB {
	port := server.Port()
	if port == "" {
		port = "443"
	}
	return apilb.New(apilb.DefaultAddress, net.JoinHostPort(server.Hostname(), port),
		filepath.Join(p.AgentDir(), "etc", "apiservers.json"), log)
}

// pointAt makes the kubeconfigs that exist reach the API at url (the load
// balancer); kubelet copies the bootstrap kubeconfig's server into the
// kubeconfig it writes.
func pointAt(url string, kubeconfigs ...string) error {
	for _, path := range kubeconfigs {
		cfg, err := clientcmd.LoadFromFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("load %s: %w", path, err)
		}
		changed := false
		for _, c := range cfg.Clusters {
			if c.Server != url {
				c.Server, changed = url, true
			}
		}
		if !changed {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return err
		}
		if err := clientcmd.WriteToFile(*cfg, path); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	return nil
}

// hosts returns the hosts of host:port addresses (the apiservers the
// load balancer knows): the tunnel dials their konnectivity port.
func hosts(addrs []string) []string {
	out := make([]string, 0, len(addrs))
	for _, a := range addrs {
		if h, _, err := net.SplitHostPort(a); err == nil {
			out = append(out, h)
		}
	}
	return out
}
