package vpn

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/iks-dev/iks/internal/kubeapply"
	"github.com/iks-dev/iks/internal/lbpool"
	"github.com/iks-dev/iks/internal/topology"
	"github.com/iks-dev/iks/internal/vpnconn"
)

// ZoneServiceName is the Service of one zone's IP (zoneLoadBalancer), as
// the chart's service-mzr names them.
func ZoneServiceName(conn, zone string) string { return ServiceName(conn) + "-" + zone }

// wantServices are the connection's LoadBalancer Services: one on
// loadBalancerIP, or one per zone of zoneLoadBalancer, each asking the
// LB controller for its zone (annotation) and selecting the gateway
// pod. With externalTrafficPolicy Local only the gateway's node may
// hold an IP, so the IP of the gateway's zone is the one announced.
func wantServices(conn string, p *vpnconn.Plan, owner metav1.OwnerReference) []*corev1.Service {
	if p == nil {
		return nil
	}
	if p.LoadBalancerIP.IsValid() {
		return []*corev1.Service{lbService(conn, p.LoadBalancerIP, owner)}
	}
	var out []*corev1.Service
	for _, z := range p.LBZones() {
		s := lbService(conn, p.ZoneLB[z], owner)
		s.Name = ZoneServiceName(conn, z)
		s.Annotations = map[string]string{lbpool.AnnotationZone: z}
		out = append(out, s)
	}
	return out
}

// applyService applies the connection's Services and removes the
// others it owned (none when the connection is invalid).
func (c *Controller) applyService(ctx context.Context, conn string, p *vpnconn.Plan, owner metav1.OwnerReference) error {
	svcs := c.cs.CoreV1().Services(vpnconn.Namespace)
	keep := map[string]bool{}
	for _, s := range wantServices(conn, p, owner) {
		if _, err := kubeapply.Apply(ctx, svcs, s); err != nil {
			return err
		}
		keep[s.Name] = true
	}
	have, err := svcs.List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(labels.Set{AppLabel: AppValue, ConnLabel: conn}).String()})
	if err != nil {
		return fmt.Errorf("list the Services of VPNConnection %s: %w", conn, err)
	}
	for _, s := range have.Items {
		if keep[s.Name] {
			continue
		}
		if err := svcs.Delete(ctx, s.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete Service %s/%s: %w", vpnconn.Namespace, s.Name, err)
		}
	}
	return nil
}

// checkLoadBalancerIP checks the plan's load balancer IPs against the
// published pools and the cluster's Services; a zone's IP must come
// from a portable subnet of that zone (or of none).
func (c *Controller) checkLoadBalancerIP(ctx context.Context, p *vpnconn.Plan) error {
	if !p.LoadBalancerIP.IsValid() && len(p.ZoneLB) == 0 {
		return nil
	}
	var subnets []lbpool.Subnet
	cm, err := c.cs.CoreV1().ConfigMaps(lbpool.ConfigMapNamespace).Get(ctx, lbpool.ConfigMapName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return fmt.Errorf("read the portable subnets: %w", err)
	default:
		if subnets, err = lbpool.Decode(cm.Data[lbpool.ConfigMapKey]); err != nil {
			return err
		}
	}
	svcs, err := c.cs.CoreV1().Services("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list Services: %w", err)
	}
	if p.LoadBalancerIP.IsValid() {
		return lbIPProblem(p.LoadBalancerIP, subnets, svcs.Items, vpnconn.Namespace+"/"+ServiceName(p.Name))
	}
	return zoneLBProblems(p, subnets, svcs.Items)
}

func zoneLBProblems(p *vpnconn.Plan, subnets []lbpool.Subnet, svcs []corev1.Service) error {
	var errs []error
	for _, z := range p.LBZones() {
		ip := p.ZoneLB[z]
		own := vpnconn.Namespace + "/" + ZoneServiceName(p.Name, z)
		if err := lbIPProblem(ip, subnets, svcs, own); err != nil {
			errs = append(errs, fmt.Errorf("zoneLoadBalancer %s: %w", z, err))
			continue
		}
		if s, ok := lbpool.Find(subnets, ip); ok && s.Zone != "" && s.Zone != z {
			errs = append(errs, fmt.Errorf("zoneLoadBalancer %s=%s: %s is in the portable subnet %s of zone %s: give an IP of a portable subnet of zone %s",
				z, ip, ip, s.Prefix, s.Zone, z))
		}
	}
	return errors.Join(errs...)
}

// zonesAffinity keeps the gateway in the zones of zoneLoadBalancer
// (without zoneSelector): elsewhere it would have no IP.
func zonesAffinity(p *vpnconn.Plan) *corev1.NodeAffinity {
	if len(p.ZoneLB) == 0 {
		return nil
	}
	return &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
		NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{
			Key: topology.LabelZone, Operator: corev1.NodeSelectorOpIn, Values: p.LBZones()}}}}}}
}
