package lb

import (
	"context"
	"log/slog"
)

// APIObjects is the one-shot component every server runs to publish what
// its local node's LoadBalancer speaker reads (the PortableSubnet CRD,
// the subnets ConfigMap, the speaker's RBAC); the allocating Controller
// runs on the leading server only.
type APIObjects struct{ c *Controller }

// NewAPIObjects returns the component for the controller's configuration.
func NewAPIObjects(cfg Config, log *slog.Logger) *APIObjects { return &APIObjects{c: New(cfg, log)} }

// Name implements component.Component.
func (a *APIObjects) Name() string { return "lb-api" }

// Init implements component.Component.
func (a *APIObjects) Init(context.Context) error { return nil }

// Start installs the objects.
func (a *APIObjects) Start(ctx context.Context) error {
	cs, err := a.c.cfg.Clients.Wait(ctx)
	if err != nil {
		return err
	}
	if _, err := a.c.resourceClient(ctx); err != nil {
		return err
	}
	return EnsureAPIObjects(ctx, cs, a.c.subnets)
}

// Stop implements component.Component; nothing runs after Start.
func (a *APIObjects) Stop(context.Context) error { return nil }
