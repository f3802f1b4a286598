package netctl

import (
	"context"
	"fmt"

	apiext "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"

	"github.com/iks-dev/iks/internal/kubeclients"
)

// BGPPeerSetup is the one-shot component every server runs to install the
// BGPPeer CRD its local node's routing needs; the controller reporting
// invalid BGPPeers (BGPPeers) runs on the leading server only.
type BGPPeerSetup struct{ Clients *kubeclients.Clients }

// Name implements component.Component.
func (b *BGPPeerSetup) Name() string { return "bgppeer-crd" }

// Init implements component.Component.
func (b *BGPPeerSetup) Init(context.Context) error { return nil }

// Start installs the CRD.
func (b *BGPPeerSetup) Start(ctx context.Context) error {
	if _, err := b.Clients.Wait(ctx); err != nil {
		return err
	}
	ax, err := apiext.NewForConfig(b.Clients.Config())
	if err != nil {
		return fmt.Errorf("apiextensions client: %w", err)
	}
	return installBGPPeerCRD(ctx, ax)
}

// Stop implements component.Component; nothing runs after Start.
func (b *BGPPeerSetup) Stop(context.Context) error { return nil }
