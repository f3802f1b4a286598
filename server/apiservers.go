package server

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/iks-dev/iks/agent/apilb"
	"github.com/iks-dev/iks/internal/component"
	"github.com/iks-dev/iks/internal/kubeclients"
)

// apiServersRefresh is how often an HA server re-reads the apiservers.
const apiServersRefresh = 10 * time.Second

// apiServers follows the apiservers (the kubernetes Service's
// EndpointSlices) for the local node's tunnel, which keeps a tunnel to
// every server as agents do.
type apiServers struct {
	clients *kubeclients.Clients
	log     *slog.Logger
	runner  component.Runner

	mu    sync.Mutex
	hosts []string
}

func (a *apiServers) Name() string               { return "apiserver-list" }
func (a *apiServers) Init(context.Context) error { return nil }

// Start reads the list in the background; until it is read, Hosts is
// empty and the local node's tunnel goes to this server only.
func (a *apiServers) Start(ctx context.Context) error {
	a.runner.Go(ctx, func(ctx context.Context) error {
		for {
			if err := a.refresh(ctx); err != nil && ctx.Err() == nil {
				a.log.Debug("apiserver list not read", "err", err)
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(apiServersRefresh):
			}
		}
	})
	return nil
}

func (a *apiServers) refresh(ctx context.Context) error {
	cs, err := a.clients.Wait(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	list, err := cs.DiscoveryV1().EndpointSlices(metav1.NamespaceDefault).List(ctx,
		metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=kubernetes"})
	if err != nil {
		return err
	}
	var hosts []string
	for _, s := range apilb.Servers(list.Items) {
		if h, _, err := net.SplitHostPort(s); err == nil {
			hosts = append(hosts, h)
		}
	}
	a.mu.Lock()
	a.hosts = hosts
	a.mu.Unlock()
	return nil
}

// Hosts returns the apiservers' hosts last read.
func (a *apiServers) Hosts() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.hosts
}

// Stop ends the refresh.
func (a *apiServers) Stop(ctx context.Context) error { return a.runner.Stop(ctx) }
