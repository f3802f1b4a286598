package main

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/vishvananda/netlink"

	"github.com/iks-dev/iks/internal/vpnconn"
)

// lbWaitReport is how often the wait for the load balancer IP is logged.
const lbWaitReport = 30 * time.Second

// localAddrs are the addresses charon accepts IKE on, the first the one
// it connects from. The gateway runs in the host network: the remote's
// IKE to the load balancer IP reaches it through kube-proxy's DNAT to
// the node's address (the Service's externalTrafficPolicy Local keeps
// the remote's address and puts the IP on this node), so the node's
// address is always one. With connectUsingLoadBalancerIP charon must
// also send from the load balancer IP, which it can only once the
// node's lb-speaker holds the IP: this waits for that (the condition
// says so meanwhile) and puts it first.
func (g *gateway) localAddrs(ctx context.Context) ([]netip.Addr, error) {
	p := g.e.Plan
	if !p.ConnectUsingLB {
		return []netip.Addr{g.e.NodeIP}, nil
	}
	msg := fmt.Sprintf("waiting for the load balancer IP %s (Service %s/iks-vpn-%s) to be announced on node %s: charon connects from it (connectUsingLoadBalancerIP); "+
		"the node must be able to hold IPs of that portable subnet (see `iks lb status`; keep the gateway on such nodes with nodeSelector)",
		p.LoadBalancerIP, vpnconn.Namespace, g.e.Name, g.e.NodeName)
	t0, reported := time.Now(), false
	for {
		ok, err := hasAddr(p.LoadBalancerIP)
		if err != nil {
			return nil, err
		}
		if ok {
			g.log.Info("load balancer IP is on this node: charon connects from it", "ip", p.LoadBalancerIP,
				"waited", time.Since(t0).Round(10*time.Millisecond).String())
			return []netip.Addr{p.LoadBalancerIP, g.e.NodeIP}, nil
		}
		if !reported {
			g.fail(ctx, vpnconn.ReasonConnecting, msg)
			reported = true
		}
		if time.Since(t0) > lbWaitReport {
			g.log.Warn("still waiting for the load balancer IP on this node; see `iks lb status`", "ip", p.LoadBalancerIP)
			t0 = time.Now()
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// hasAddr reports whether a is an address of this (the node's) network
// namespace.
func hasAddr(a netip.Addr) (bool, error) {
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return false, fmt.Errorf("list addresses: %w", err)
	}
	for _, x := range addrs {
		if ip, ok := netip.AddrFromSlice(x.IP.To4()); ok && ip == a {
			return true, nil
		}
	}
	return false, nil
}

// lbHere returns the load balancer IP when this node holds it.
func (g *gateway) lbHere() string {
	ip := g.e.Plan.LoadBalancerIP
	if !ip.IsValid() {
		return ""
	}
	if ok, err := hasAddr(ip); err != nil || !ok {
		return ""
	}
	return ip.String()
}

// status is the gateway part of the connection's status.
func (g *gateway) status(now *metav1.Time) vpnconn.GatewayStatus {
	return vpnconn.GatewayStatus{Node: g.e.NodeName, NodeIP: g.e.NodeIP.String(), Pod: g.e.PodName,
		Dataplane: g.dataplane, Generation: g.e.Generation, Heartbeat: now, LoadBalancerIP: g.lbHere()}
}
