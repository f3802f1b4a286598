package alb

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	appsac "k8s.io/client-go/applyconfigurations/apps/v1"
	coreac "k8s.io/client-go/applyconfigurations/core/v1"
	metaac "k8s.io/client-go/applyconfigurations/meta/v1"

	"github.com/iks-dev/iks/internal/lbpool"
)

func albLabels(a ALB) map[string]string {
	return map[string]string{LabelApp: AppName, lbpool.LabelALB: a.Name}
}

// deployment is the ALB's Deployment: replicas pods (0 when disabled),
// spread over nodes, non-root, read-only root filesystem.
// An ALB with an IP runs only on the nodes that can announce it (labelled
// NodeLabel(a), see syncNodeLabels), so that with externalTrafficPolicy
// Local the IP has a node to live on and another to fail over to.
func deployment(a ALB, image string, replicas int32, ds deploySettings) *appsac.DeploymentApplyConfiguration {
	l := albLabels(a)
	probe := func(delay int32) *coreac.ProbeApplyConfiguration {
		return coreac.Probe().WithHTTPGet(coreac.HTTPGetAction().WithPath("/healthz").WithPort(intstr.FromInt32(HealthPort))).
			WithInitialDelaySeconds(delay).WithPeriodSeconds(2).WithFailureThreshold(3)
	}
	args := []string{"--class=" + a.Class, "--publish-service=" + Namespace + "/" + a.Name,
		"--default-ssl-certificate=" + Namespace + "/" + DefaultCertSecret,
		"--http-port=" + strconv.Itoa(HTTPPort), "--https-port=" + strconv.Itoa(HTTPSPort), "--health-port=" + strconv.Itoa(HealthPort)}
	if ds.SSLPassthrough {
		args = append(args, "--enable-ssl-passthrough")
	}
	ctr := coreac.Container().WithName("alb").WithImage(image).WithImagePullPolicy(corev1.PullNever).
		WithArgs(args...).
		WithPorts(coreac.ContainerPort().WithName("http").WithContainerPort(HTTPPort),
			coreac.ContainerPort().WithName("https").WithContainerPort(HTTPSPort),
			coreac.ContainerPort().WithName("health").WithContainerPort(HealthPort)).
		WithReadinessProbe(probe(0)).WithLivenessProbe(probe(10)).
		WithResources(coreac.ResourceRequirements().WithRequests(corev1.ResourceList{
			corev1.ResourceCPU: mustQty("10m"), corev1.ResourceMemory: mustQty("32Mi")})).
		WithSecurityContext(coreac.SecurityContext().WithRunAsNonRoot(true).WithRunAsUser(65534).
			WithAllowPrivilegeEscalation(false).WithReadOnlyRootFilesystem(true).
			WithCapabilities(coreac.Capabilities().WithDrop("ALL")))
	// One replica per node (required: replicas follow the schedulable
	// nodes, see wantReplicas), workers preferred over the control plane.
	affinity := coreac.Affinity().WithPodAntiAffinity(coreac.PodAntiAffinity().WithRequiredDuringSchedulingIgnoredDuringExecution(
		coreac.PodAffinityTerm().WithTopologyKey(corev1.LabelHostname).WithLabelSelector(metaac.LabelSelector().WithMatchLabels(l)))).
		WithNodeAffinity(nodeAffinity(a))
	return appsac.Deployment(a.Name, Namespace).WithLabels(l).
		WithSpec(appsac.DeploymentSpec().WithReplicas(replicas).
			WithSelector(metaac.LabelSelector().WithMatchLabels(l)).
			WithStrategy(appsac.DeploymentStrategy().WithType(appsv1.RollingUpdateDeploymentStrategyType).
				WithRollingUpdate(appsac.RollingUpdateDeployment().WithMaxUnavailable(intstr.FromInt32(1)).WithMaxSurge(intstr.FromInt32(0)))).
			WithTemplate(coreac.PodTemplateSpec().WithLabels(l).WithSpec(coreac.PodSpec().
				WithServiceAccountName(ServiceAccount).WithPriorityClassName("system-cluster-critical").
				WithTerminationGracePeriodSeconds(30).WithAffinity(affinity).WithContainers(ctr))))
}

// nodeAffinity keeps the pods of an ALB with an IP on the nodes attached
// to its subnet (required: with externalTrafficPolicy Local only such a
// node can hold the IP for a local pod, so a pod elsewhere would serve
// nobody), and prefers workers over the control plane. The nodes are
// named by a label, not listed, so the template stays the same as nodes
// come and go. (A surge pod could find no free node under the
// one-per-node rule: rollouts replace one pod at a time.)
func nodeAffinity(a ALB) *coreac.NodeAffinityApplyConfiguration {
	na := coreac.NodeAffinity().WithPreferredDuringSchedulingIgnoredDuringExecution(
		coreac.PreferredSchedulingTerm().WithWeight(10).WithPreference(coreac.NodeSelectorTerm().WithMatchExpressions(
			coreac.NodeSelectorRequirement().WithKey("node-role.kubernetes.io/control-plane").WithOperator(corev1.NodeSelectorOpDoesNotExist))))
	if a.IP.IsValid() {
		na = na.WithRequiredDuringSchedulingIgnoredDuringExecution(coreac.NodeSelector().WithNodeSelectorTerms(
			coreac.NodeSelectorTerm().WithMatchExpressions(
				coreac.NodeSelectorRequirement().WithKey(NodeLabel(a)).WithOperator(corev1.NodeSelectorOpExists))))
	}
	return na
}

// service is the ALB's Service: LoadBalancer on the subnet's ALB IP with
// externalTrafficPolicy Local (the client IP reaches the ALB), or NodePort
// for the fallback ALB; streams adds the tcp-services/udp-services ports.
func service(a ALB, streams []corev1.ServicePort) *coreac.ServiceApplyConfiguration {
	l := albLabels(a)
	ports := []*coreac.ServicePortApplyConfiguration{
		coreac.ServicePort().WithName("http").WithPort(80).WithTargetPort(intstr.FromInt32(HTTPPort)).WithProtocol(corev1.ProtocolTCP),
		coreac.ServicePort().WithName("https").WithPort(443).WithTargetPort(intstr.FromInt32(HTTPSPort)).WithProtocol(corev1.ProtocolTCP),
	}
	for _, p := range streams {
		ports = append(ports, coreac.ServicePort().WithName(p.Name).WithPort(p.Port).WithTargetPort(p.TargetPort).WithProtocol(p.Protocol))
	}
	spec := coreac.ServiceSpec().WithSelector(l).WithPorts(ports...)
	svc := coreac.Service(a.Name, Namespace).WithLabels(l)
	if a.IP.IsValid() {
		spec = spec.WithType(corev1.ServiceTypeLoadBalancer).WithExternalTrafficPolicy(corev1.ServiceExternalTrafficPolicyLocal)
		svc = svc.WithAnnotations(map[string]string{lbpool.AnnotationIPType: string(a.Kind), lbpool.AnnotationIP: a.IP.String()})
	} else {
		spec = spec.WithType(corev1.ServiceTypeNodePort)
	}
	return svc.WithSpec(spec)
}

// streamPorts turns tcp-services / udp-services data into Service ports;
// keys that are not ports are left to the ALB, which reports them.
func streamPorts(tcp, udp map[string]string) []corev1.ServicePort {
	var out []corev1.ServicePort
	add := func(data map[string]string, proto corev1.Protocol) {
		for k := range data {
			n, err := strconv.Atoi(strings.TrimSpace(k))
			if err != nil || n < 1 || n > 65535 || n == 80 || n == 443 {
				continue
			}
			out = append(out, corev1.ServicePort{Name: fmt.Sprintf("%s-%d", strings.ToLower(string(proto)), n), Port: int32(n),
				TargetPort: intstr.FromInt32(int32(n)), Protocol: proto})
		}
	}
	add(tcp, corev1.ProtocolTCP)
	add(udp, corev1.ProtocolUDP)
	slices.SortFunc(out, func(a, b corev1.ServicePort) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// wantReplicas is Replicas, limited to the nodes the pods may run on
// (those in attached when the ALB has an IP: the pods never share a node)
// that count for replicas (countsForReplicas), at least 1.
func wantReplicas(nodes []*corev1.Node, hasIP bool, attached []string, now time.Time) int32 {
	n := int32(0)
	for _, nd := range nodes {
		if hasIP && !slices.Contains(attached, nd.Name) {
			continue
		}
		if countsForReplicas(nd, now) {
			n++
		}
	}
	return min(max(n, 1), Replicas)
}

var applyOpts = metav1.ApplyOptions{FieldManager: FieldOwner, Force: true}

func mustQty(s string) resource.Quantity { return resource.MustParse(s) }
