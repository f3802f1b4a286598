package main

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/iks-dev/iks/internal/topology"
	"github.com/iks-dev/iks/internal/vpnconn"
)

// resolveNode applies what depends on the gateway's node, as the
// chart's VPN pod does: zoneLoadBalancer's IP of the node's zone becomes
// the plan's LoadBalancerIP (the wait for it, the status and charon's
// local addresses then work as with loadBalancerIP), and local.id's
// variables become the address they name.
func (g *gateway) resolveNode(ctx context.Context) error {
	p := g.e.Plan
	if len(p.ZoneLB) == 0 && p.LocalID != vpnconn.IDNodePublicIP && p.LocalID != vpnconn.IDLoadBalancerIP {
		return nil
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	labels, annotations, err := g.k.nodeMeta(rctx, g.e.NodeName)
	if err != nil {
		return fmt.Errorf("read node %s (its zone and public address): %w", g.e.NodeName, err)
	}
	if len(p.ZoneLB) > 0 {
		zone := labels[topology.LabelZone]
		ip, err := zoneIP(p.ZoneLB, zone, g.e.NodeName)
		if err != nil {
			return err
		}
		p.LoadBalancerIP = ip
		g.log.Info("zoneLoadBalancer: this zone's load balancer IP", "zone", zone, "ip", ip)
	}
	id, err := localID(p.LocalID, p.LoadBalancerIP, annotations[topology.AnnotationPublicCIDR], g.e.NodeName)
	if err != nil {
		return err
	}
	if id != p.LocalID {
		g.log.Info("local.id resolved", "variable", p.LocalID, "id", id)
		p.LocalID = id
	}
	return nil
}

// localID resolves local.id's variables: the load balancer IP, or the
// node's public address (its public-cidr annotation, 203.0.113.5/24).
func localID(id string, lb netip.Addr, publicCIDR, node string) (string, error) {
	switch id {
	case vpnconn.IDLoadBalancerIP:
		if !lb.IsValid() {
			return "", fmt.Errorf("local.id %s: the connection has no load balancer IP", id)
		}
		return lb.String(), nil
	case vpnconn.IDNodePublicIP:
		pfx, err := netip.ParsePrefix(publicCIDR)
		if err != nil {
			return "", fmt.Errorf("local.id %s: node %s has no public address (annotation %s is %q): keep the gateway on nodes with a public side (nodeSelector), or set local.id",
				id, node, topology.AnnotationPublicCIDR, publicCIDR)
		}
		return pfx.Addr().String(), nil
	}
	return id, nil
}

// zoneIP is zone's IP in zoneLB, or an error naming what to add.
func zoneIP(zoneLB map[string]netip.Addr, zone, node string) (netip.Addr, error) {
	if ip, ok := zoneLB[zone]; ok {
		return ip, nil
	}
	zones := slices.Sorted(maps.Keys(zoneLB))
	return netip.Addr{}, fmt.Errorf("node %s is in zone %q, which zoneLoadBalancer does not list (%s): add %s=IP or keep the gateway in a listed zone with zoneSelector",
		node, zone, strings.Join(zones, ", "), zone)
}
