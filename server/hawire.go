package server

import (
	"context"
	"log/slog"
	"slices"

	"github.com/iks-dev/iks/internal/component"
	"github.com/iks-dev/iks/internal/config"
	"github.com/iks-dev/iks/server/controllers"
	"github.com/iks-dev/iks/server/etcd"
	"github.com/iks-dev/iks/server/ha"
)

// haEtcd joins the cluster's servers when --server is set (fetching the
// shared CAs and keys before the PKI is loaded) and returns the etcd HA
// settings (nil for a single server).
func haEtcd(ctx context.Context, cfg *config.Server, log *slog.Logger) (*etcd.HA, error) {
	if cfg.Datastore.External != nil {
		return nil, joinExternal(ctx, cfg, log)
	}
	if !cfg.HA.Enabled() {
		return nil, nil
	}
	h := &etcd.HA{Name: cfg.NodeName, NodeIP: cfg.NodeIP.String(), Client: etcd.LocalClientFiles(cfg.Paths().TLSDir())}
	if cfg.HA.JoinURL != "" {
		if err := ha.Join(ctx, cfg, log); err != nil {
			return nil, err
		}
		h.Join = ha.EtcdEndpoints(cfg.HA.JoinURL)
	}
	if cfg.HA.ClusterInit || cfg.HA.JoinURL != "" {
		log.Info("HA server: etcd member reachable by the other servers", "peer", etcd.PeerURLOf(h.NodeIP), "join", cfg.HA.JoinURL)
	}
	return h, nil
}

// haComponents are the components only HA servers run: the publisher of
// the shared files for servers that join later.
func haComponents(cfg *config.Server, admin string, log *slog.Logger) []component.Component {
	if !cfg.HA.Enabled() {
		return nil
	}
	return []component.Component{&ha.Publisher{DataDir: cfg.DataDir, Kubeconfig: admin, Log: log.With("component", "server-bootstrap")}}
}

// leaderElectArgs makes kube-controller-manager elect a leader among HA
// servers (a single server skips the election and its start-up wait).
func leaderElectArgs(cfg *config.Server) []string {
	if !cfg.HA.Enabled() {
		return nil
	}
	return []string{"--leader-elect=true"}
}

// newScheduler returns kube-scheduler, electing a leader among HA servers.
func newScheduler(cfg *config.Server, log *slog.Logger) *controllers.Scheduler {
	s := controllers.NewScheduler(kubeconfigPath(cfg, "scheduler"), log).RecordArgs(config.Paths{Root: cfg.DataDir}.ArgsDir()).WithArgs(cfg.SchedulerArgs)
	if cfg.HA.Enabled() {
		s.WithLeaderElection()
	}
	return s
}

// insertAfter puts cs after the component named name (at the end when
// there is none).
func insertAfter(list []component.Component, name string, cs ...component.Component) []component.Component {
	i := slices.IndexFunc(list, func(x component.Component) bool { return x.Name() == name })
	if i < 0 {
		return append(list, cs...)
	}
	return slices.Insert(list, i+1, cs...)
}
