package server

import (
	"context"
	"log/slog"
	"net"
	"slices"
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

	// self is this server's advertised address: a warning names it when
	// it stays out of the list (the other servers' agents then never
	// learn it), with what its /readyz says.
	self         string
	missingSince time.Time
	warned       bool

	mu    sync.Mutex
	hosts []string
}

// selfMissingWarn is how long this server may be missing from the list
// before a warning: its apiserver adds itself within ~10 s of /readyz.
const selfMissingWarn = time.Minute

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
	a.checkSelf(ctx, cs.Discovery().RESTClient().Get().AbsPath("/readyz").Param("verbose", "true").DoRaw, hosts, time.Now())
	return nil
}

// checkSelf warns once when this server has been missing from the
// kubernetes Service's endpoints for selfMissingWarn.
func (a *apiServers) checkSelf(ctx context.Context, readyz func(context.Context) ([]byte, error), hosts []string, now time.Time) {
	if a.self == "" || slices.Contains(hosts, a.self) {
		a.missingSince, a.warned = time.Time{}, false
		return
	}
	if a.missingSince.IsZero() {
		a.missingSince = now
	}
	if a.warned || now.Sub(a.missingSince) < selfMissingWarn {
		return
	}
	a.warned = true
	body, err := readyz(ctx)
	a.log.Warn("this apiserver is missing from the kubernetes Service's endpoints: agents do not learn it (kube-apiserver adds itself every 10 s once /readyz passes)",
		"address", a.self, "listed", hosts, "missing-for", now.Sub(a.missingSince).Round(time.Second).String(),
		"readyz", string(body), "readyz-err", err)
}

// Hosts returns the apiservers' hosts last read.
func (a *apiServers) Hosts() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.hosts
}

// Stop ends the refresh.
func (a *apiServers) Stop(ctx context.Context) error { return a.runner.Stop(ctx) }
