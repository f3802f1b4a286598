package vpn

import (
	"context"
	"fmt"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/iks-dev/iks/internal/vpnconn"
)

// Gateway failover faster than the node-lifecycle controller (which
// waits its 50 s grace period before a dead node's pods move): each
// gateway renews a Lease every 2 s; when one has not been renewed for
// its duration plus leaseSlack, the controller taints the gateway's node
// NoSchedule (TaintGatewayLost) and deletes the pod at once, so the
// Deployment starts a new one on another eligible node. The taint goes
// when the node's own kubelet Lease is renewed again.
const (
	TaintGatewayLost = "network.iks.io/vpn-gateway-lost"
	leaseSlack       = 2 * time.Second
	checkEvery       = time.Second
)

func (c *Controller) watchGateways(ctx context.Context) {
	t := time.NewTicker(checkEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := c.checkGateways(ctx, time.Now()); err != nil {
			c.log.Debug("gateway lease check", "err", err)
		}
	}
}

func (c *Controller) checkGateways(ctx context.Context, now time.Time) error {
	leases, err := c.cs.CoordinationV1().Leases(vpnconn.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list leases: %w", err)
	}
	for _, l := range leases.Items {
		if l.Spec.RenewTime == nil || l.Spec.HolderIdentity == nil || l.Spec.LeaseDurationSeconds == nil ||
			len(l.Name) <= len("iks-vpn-") || l.Name[:len("iks-vpn-")] != "iks-vpn-" {
			continue
		}
		expiry := l.Spec.RenewTime.Add(time.Duration(*l.Spec.LeaseDurationSeconds)*time.Second + leaseSlack)
		if now.Before(expiry) {
			continue
		}
		pod, err := c.cs.CoreV1().Pods(vpnconn.Namespace).Get(ctx, *l.Spec.HolderIdentity, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue // already moved; the new pod takes the Lease over
		}
		if err != nil {
			return err
		}
		node := pod.Spec.NodeName
		c.log.Warn("VPN gateway stopped renewing its Lease: moving it to another node", "lease", l.Name, "pod", pod.Name,
			"node", node, "silent-for", now.Sub(l.Spec.RenewTime.Time).Round(100*time.Millisecond).String())
		if node != "" {
			if err := c.taint(ctx, node, now); err != nil {
				c.log.Warn("taint node of a lost VPN gateway", "node", node, "err", err)
			}
		}
		if err := c.cs.CoreV1().Pods(vpnconn.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete lost gateway pod %s: %w", pod.Name, err)
		}
	}
	return c.untaint(ctx)
}

// taint keeps new gateways off node until it is back.
func (c *Controller) taint(ctx context.Context, node string, now time.Time) error {
	n, err := c.cs.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		return err
	}
	for _, t := range n.Spec.Taints {
		if t.Key == TaintGatewayLost {
			return nil
		}
	}
	// The value records when (Unix seconds): TimeAdded is for NoExecute.
	n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: TaintGatewayLost, Effect: corev1.TaintEffectNoSchedule,
		Value: strconv.FormatInt(now.Unix(), 10)})
	_, err = c.cs.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{})
	return err
}

// untaint removes TaintGatewayLost from nodes whose kubelet renewed its
// node Lease after the taint was set.
func (c *Controller) untaint(ctx context.Context) error {
	nodes, err := c.cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for i := range nodes.Items {
		n := &nodes.Items[i]
		idx := -1
		for j, t := range n.Spec.Taints {
			if t.Key == TaintGatewayLost {
				idx = j
			}
		}
		if idx < 0 {
			continue
		}
		sec, err := strconv.ParseInt(n.Spec.Taints[idx].Value, 10, 64)
		if err != nil {
			sec = 0 // unreadable: remove once the node renews its Lease
		}
		l, err := c.cs.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, n.Name, metav1.GetOptions{})
		if err != nil || l.Spec.RenewTime == nil || !l.Spec.RenewTime.After(time.Unix(sec+1, 0)) {
			continue
		}
		n.Spec.Taints = append(n.Spec.Taints[:idx:idx], n.Spec.Taints[idx+1:]...)
		if _, err := c.cs.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{}); err != nil {
			return err
		}
		c.log.Info("node is back: VPN gateways may run there again", "node", n.Name)
	}
	return nil
}
