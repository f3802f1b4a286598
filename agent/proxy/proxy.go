// Package proxy runs the upstream kube-proxy in-process on every node:
// ClusterIP, NodePort (on every node address), ExternalName (no rules:
// DNS answers it), session affinity, externalTrafficPolicy Local and
// selectorless Services with hand-made EndpointSlices. The backend is
// nftables where the kernel and nft support it, iptables otherwise, or
// the one --proxy-mode names.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"k8s.io/component-base/metrics/legacyregistry"
	kubeproxyapp "k8s.io/kubernetes/cmd/kube-proxy/app"

	"github.com/iks-dev/iks/internal/component"
	"github.com/iks-dev/iks/internal/config"
	"github.com/iks-dev/iks/internal/kubeutil"
)

// Proxy is the kube-proxy component.
type Proxy struct {
	cfg    Config
	log    *slog.Logger
	mode   config.ProxyMode
	runner component.Runner
}

// New returns the component.
func New(cfg Config, log *slog.Logger) *Proxy {
	return &Proxy{cfg: cfg, log: log.With("component", "kube-proxy")}
}

// Name implements component.Component.
func (p *Proxy) Name() string { return "kube-proxy" }

// Mode is the backend in use (after Init).
func (p *Proxy) Mode() config.ProxyMode { return p.mode }

// Init picks the backend and writes kube-proxy's configuration.
func (p *Proxy) Init(ctx context.Context) error {
	mode, reason, err := ResolveMode(ctx, p.cfg.Mode)
	if err != nil {
		return err
	}
	p.mode = mode
	p.log.Info("kube-proxy mode", "mode", string(mode), "asked", string(p.cfg.Mode), "why", reason)
	return p.cfg.writeConfig(mode)
}

// Start runs kube-proxy. It installs no signal handler and never returns
// by itself (upstream runs until the process ends); its rules stay in
// place when iks stops, so Services keep working across an agent restart,
// as with a restarted kube-proxy.
func (p *Proxy) Start(ctx context.Context) error {
	// A joining node's credentials appear with kubelet's TLS bootstrap;
	// kube-proxy gives up at once when they are not there yet.
	if _, err := kubeutil.WaitClientset(ctx, p.cfg.Kubeconfig); err != nil {
		return err
	}
	cmd := kubeproxyapp.NewProxyCommand()
	args := []string{"--config=" + p.cfg.configPath()}
	cmd.SetArgs(args)
	if err := component.WriteArgs(p.cfg.ArgsDir, p.Name(), args); err != nil {
		return err
	}
	p.runner.Go(ctx, func(ctx context.Context) error {
		if err := cmd.ExecuteContext(ctx); err != nil {
			return fmt.Errorf("kube-proxy: %w", err)
		}
		return errors.New("kube-proxy returned")
	})
	return nil
}

// Ready waits for kube-proxy's first successful rule sync.
func (p *Proxy) Ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		if err := p.runner.Exited(); err != nil {
			return err
		}
		if ts, ok := LastSync(); ok && !ts.IsZero() {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kube-proxy has not synced its %s rules: %w", p.mode, ctx.Err())
		case <-t.C:
		}
	}
}

// Healthy reports an exited kube-proxy.
func (p *Proxy) Healthy() error { return p.runner.Exited() }

// Stop leaves kube-proxy running until the process ends: upstream offers
// no way to stop it (its Run ignores cancellation).
func (p *Proxy) Stop(context.Context) error { return nil }

// LastSync returns when kube-proxy last synced its IPv4 rules, from its
// sync_proxy_rules_last_timestamp_seconds metric (this process's).
func LastSync() (time.Time, bool) {
	mfs, err := legacyregistry.DefaultGatherer.Gather()
	if err != nil {
		return time.Time{}, false
	}
	for _, mf := range mfs {
		if mf.GetName() != "kubeproxy_sync_proxy_rules_last_timestamp_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "ip_family" && l.GetValue() == "IPv4" && m.GetGauge().GetValue() > 0 {
					sec := m.GetGauge().GetValue()
					return time.Unix(0, int64(sec*float64(time.Second))), true
				}
			}
		}
	}
	return time.Time{}, false
}
