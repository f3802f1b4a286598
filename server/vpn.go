package server

import (
	"log/slog"
	"net"
	"strconv"

	"github.com/iks-dev/iks/embedded"
	"github.com/iks-dev/iks/internal/component"
	"github.com/iks-dev/iks/internal/config"
	"github.com/iks-dev/iks/internal/vpnconn"
	"github.com/iks-dev/iks/server/vpn"
)

// vpnController is the VPNConnection controller, started in the
// background (it installs a CRD that nothing else waits for).
func vpnController(cfg *config.Server, admin string, log *slog.Logger) component.Component {
	return component.InBackground(vpn.New(vpn.Config{Kubeconfig: admin, Image: vpnImage(log),
		APIServer: "https://" + net.JoinHostPort(cfg.NodeIP.String(), strconv.Itoa(config.APIServerPort)),
		Cluster:   vpnconn.Cluster{PodCIDR: cfg.ClusterCIDR, ServiceCIDR: cfg.ServiceCIDR}}, log))
}

// vpnImage is the VPN gateway image the binary carries, or "" (logged)
// when it carries none: VPNConnections then report that.
func vpnImage(log *slog.Logger) string {
	image, err := embedded.ImageName(embedded.StrongSwanArchive)
	if err != nil {
		log.Warn("no strongSwan gateway image in this binary: VPNConnections cannot run", "component", "vpn", "err", err)
		return ""
	}
	return image
}
