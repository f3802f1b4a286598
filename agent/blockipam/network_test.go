package blockipam

import (
	"context"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// An agent whose --cluster-domain (or ranges) differ from the server's is
// refused with the value to pass; a matching one loads the network.
func TestClusterNetworkMustMatchAgentFlags(t *testing.T) {
	r := newRig(t, "n1", "uid-1")
	want := r.m.network
	if _, err := r.cs.CoreV1().ConfigMaps(want.ConfigMap().Namespace).Create(context.Background(), want.ConfigMap(), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	r.m.cfg.CacheFile = filepath.Join(t.TempDir(), "cluster-network.json")
	for _, c := range []struct {
		name string
		cfg  func(*Config)
		err  string
	}{
		{"all match", func(c *Config) {
			c.ClusterCIDR, c.ServiceCIDR, c.ClusterDomain = want.PodCIDR, want.ServiceCIDR, want.ClusterDomain
		}, ""},
		{"domain differs", func(c *Config) { c.ClusterDomain = "edge.example" }, "pass --cluster-domain cluster.local"},
		{"service range differs", func(c *Config) { c.ServiceCIDR = netip.MustParsePrefix("10.96.0.0/12") }, "pass --service-cidr 172.21.0.0/16"},
	} {
		t.Run(c.name, func(t *testing.T) {
			base := r.m.cfg
			defer func() { r.m.cfg = base }()
			c.cfg(&r.m.cfg)
			got, err := r.m.loadClusterNetwork(context.Background())
			switch {
			case c.err == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case c.err == "" && got != want:
				t.Fatalf("loaded %+v, want %+v", got, want)
			case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
				t.Fatalf("error %v, want one containing %q", err, c.err)
			}
		})
	}
}
