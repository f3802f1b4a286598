package server

import (
	"log/slog"
	"slices"
	"strconv"

	"github.com/iks-dev/iks/embedded"
	"github.com/iks-dev/iks/internal/component"
	"github.com/iks-dev/iks/internal/config"
	"github.com/iks-dev/iks/internal/kubeclients"
	"github.com/iks-dev/iks/manifests"
	"github.com/iks-dev/iks/server/deploy"
	"github.com/iks-dev/iks/server/dnsreplicas"
)

// Names of the cluster DNS objects in manifests/coredns.yaml.
const (
	coreDNSManifest   = "coredns"
	coreDNSNamespace  = "kube-system"
	coreDNSDeployment = "coredns"
	// maxDNSReplicas: one CoreDNS per node up to two, as IKS runs it.
	maxDNSReplicas = 2
)

// addonComponents returns the manifest deployer and, unless cluster DNS
// is disabled, the controller that scales CoreDNS with the Ready nodes.
func addonComponents(cfg *config.Server, admin string, clients *kubeclients.Clients, log *slog.Logger) ([]component.Component, error) {
	values := manifests.Values{
		ClusterDNS:    config.ClusterDNSIP(cfg.ServiceCIDR).String(),
		ClusterDomain: cfg.ClusterDomain,
		APIServerHost: cfg.NodeIP.String(),
		APIServerPort: strconv.Itoa(config.APIServerPort),
		ClusterCIDR:   cfg.ClusterCIDR.String(),
	}
	dnsEnabled := !slices.Contains(cfg.Disable, coreDNSManifest)
	image, err := embedded.ImageName(embedded.CoreDNSArchive)
	if err != nil && dnsEnabled {
		return nil, err
	}
	values.CoreDNSImage = image
	if values.CoreDNSImage == "" {
		// Disabled and not carried: render with a placeholder, only the
		// object names matter for the clean-up.
		values.CoreDNSImage = "iks.local/coredns:none"
	}
	comps := []component.Component{deploy.New(deploy.Config{Kubeconfig: admin, Values: values, Disabled: cfg.Disable}, log)}
	if dnsEnabled {
		comps = append(comps, dnsreplicas.New(dnsreplicas.Config{Clients: clients, Namespace: coreDNSNamespace,
			Deployment: coreDNSDeployment, Max: maxDNSReplicas}, log))
	}
	return comps, nil
}
