package server

import (
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"testing"

	"github.com/iks-dev/iks/internal/component"
	"github.com/iks-dev/iks/internal/config"
	"github.com/iks-dev/iks/internal/kubeclients"
)

func names(cs []component.Component) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name())
	}
	return out
}

// A single server runs the singleton controllers in its start order; HA
// servers run them behind the one iks-controllers election, the etcd
// member clean-up included.
func TestControllerComponents(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := &config.Server{DataDir: t.TempDir(), NodeName: "s1", NodeIP: netip.MustParseAddr("10.0.0.1"),
		ClusterCIDR: netip.MustParsePrefix("172.30.0.0/16"), ServiceCIDR: netip.MustParsePrefix("172.21.0.0/16"),
		ClusterDomain: "cluster.local", Disable: []string{"alb"}}
	clients := kubeclients.New("")
	crd := component.InBackground(&component.Func{ID: "crd"})

	ctls, awaits, err := controllerComponents(cfg, "admin.kubeconfig", clients, []*component.Background{crd}, log)
	if err != nil {
		t.Skipf("no embedded images in this build (run make): %v", err)
	}
	got := names(ctls)
	for _, want := range []string{"crd", "csr-approver", "lb (background)", "node-addresses", "vpn (background)", "bgppeers (background)", "deploy", "dns-replicas"} {
		if !slices.Contains(got, want) {
			t.Errorf("single server: controllers %v lack %s", got, want)
		}
	}
	if slices.Contains(got, "etcd-member-gc") || slices.Contains(got, ControllersLease) {
		t.Errorf("single server: %v elects or cleans etcd members", got)
	}
	if a := names(awaits); !slices.Equal(a, []string{"lb", "bgppeers"}) {
		t.Errorf("single server awaits %v, want lb and bgppeers", a)
	}

	cfg.HA.ClusterInit = true
	ctls, awaits, err = controllerComponents(cfg, "admin.kubeconfig", clients, []*component.Background{crd}, log)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(ctls); len(got) != 1 || got[0] != ControllersLease || len(awaits) != 0 {
		t.Errorf("HA server: controllers %v, awaits %v; want only the %s group", got, names(awaits), ControllersLease)
	}
}
