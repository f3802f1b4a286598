package blockipam

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/iks-dev/iks/internal/kubeutil"
	"github.com/iks-dev/iks/internal/netapi"
)

// cacheAfter is how long the ConfigMap is tried before the cached copy is
// used.
const cacheAfter = 15 * time.Second

// loadClusterNetwork reads kube-system/iks-cluster-network (caching it),
// or the cached copy when the server does not answer, and checks it
// against the agent's own flags.
func (m *Manager) loadClusterNetwork(ctx context.Context) (netapi.ClusterNetwork, error) {
	var c netapi.ClusterNetwork
	var last error
	t0 := time.Now()
	logged := false
	// A short interval: right after the apiserver's start the node's
	// first reads may be refused for a moment (its RBAC not yet in the
	// apiserver's caches), and the node waits on this.
	err := kubeutil.Poll(ctx, 100*time.Millisecond, func(ctx context.Context) (bool, error) {
		cm, err := m.cs.CoreV1().ConfigMaps(netapi.ClusterNetworkNamespace).Get(ctx, netapi.ClusterNetworkName, metav1.GetOptions{})
		if err == nil {
			if c, err = netapi.ClusterNetworkFromConfigMap(cm); err != nil {
				return false, err
			}
			if err := c.WriteCache(m.cfg.CacheFile); err != nil {
				m.log.Warn("cannot cache the cluster network", "file", m.cfg.CacheFile, "err", err)
			}
			return true, nil
		}
		last = err
		if !logged {
			m.log.Info("cluster network not readable yet; retrying", "err", err)
			logged = true
		}
		if time.Since(t0) > cacheAfter {
			if cached, cerr := netapi.ReadCache(m.cfg.CacheFile); cerr == nil {
				m.log.Warn("server unreachable; using the cached cluster network", "file", m.cfg.CacheFile, "err", err)
				c = cached
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return c, fmt.Errorf("read ConfigMap %s/%s (the server publishes the pod range there; is it running a matching iks?): %w (last: %v)",
			netapi.ClusterNetworkNamespace, netapi.ClusterNetworkName, err, last)
	}
	if p := m.cfg.ClusterCIDR; p.IsValid() && p != c.PodCIDR {
		return c, fmt.Errorf("this agent runs with --cluster-cidr %s but the server's pod range is %s: pass --cluster-cidr %s", p, c.PodCIDR, c.PodCIDR)
	}
	if p := m.cfg.ServiceCIDR; p.IsValid() && p != c.ServiceCIDR {
		return c, fmt.Errorf("this agent runs with --service-cidr %s but the server's service range is %s: pass --service-cidr %s", p, c.ServiceCIDR, c.ServiceCIDR)
	}
	if d := m.cfg.ClusterDomain; d != "" && c.ClusterDomain != "" && d != c.ClusterDomain {
		return c, fmt.Errorf("this agent runs with --cluster-domain %s but the server's cluster domain is %s: pass --cluster-domain %s", d, c.ClusterDomain, c.ClusterDomain)
	}
	return c, nil
}
