package vpn

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/iks-dev/iks/internal/vpnconn"
)

// Names of the gateway's objects.
const (
	ServiceAccount  = "iks-vpn-gateway"
	RoleGateway     = "iks-vpn-gateway"
	RoleNodeReader  = "iks-node-vpn-reader"
	AppLabel        = "app"
	AppValue        = "iks-vpn-gateway"
	ConnLabel       = "network.iks.io/vpnconnection"
	specHashAnnot   = "network.iks.io/spec-hash"
	pskMountDir     = "/etc/iks-vpn/psk"
	certMountDir    = "/etc/iks-vpn/cert"
	runDir          = "/run/iks-vpn"
	failoverSeconds = 10
)

var managedBy = map[string]string{"app.kubernetes.io/managed-by": "iks"}

// DeploymentName is the name of a connection's gateway Deployment.
func DeploymentName(conn string) string { return "iks-vpn-" + conn }

// Env names the gateway supervisor (cmd/iks-vpn) reads.
const (
	EnvName       = "IKS_VPN_NAME"
	EnvSpec       = "IKS_VPN_SPEC"
	EnvGeneration = "IKS_VPN_GENERATION"
	EnvPodCIDR    = "IKS_VPN_POD_CIDR"
	EnvSvcCIDR    = "IKS_VPN_SERVICE_CIDR"
	EnvPSKFile    = "IKS_VPN_PSK_FILE"
	EnvCertDir    = "IKS_VPN_CERT_DIR"
	EnvRunDir     = "IKS_VPN_RUN_DIR"
	EnvAPIServer  = "IKS_VPN_APISERVER"
	EnvNodeName   = "NODE_NAME"
	EnvNodeIP     = "NODE_IP"
	EnvPodName    = "POD_NAME"
)

// gatewayDeployment is the Deployment running charon and the supervisor
// for one valid connection: host network (IKE on the node's address,
// charon's TUN device and routes in the node's namespace), privileged
// (TUN, XFRM, routes), one replica re-created on another eligible node
// within seconds when its node fails, never two of them on one node
// (both would bind UDP 500/4500). credDigest (of the Secret's
// credentials) is in the template's hash: new credentials roll it.
func gatewayDeployment(c *vpnconn.Conn, p *vpnconn.Plan, cfg Config, credDigest string, owner metav1.OwnerReference) (*appsv1.Deployment, error) {
	image, cl := cfg.Image, cfg.Cluster
	specJSON, err := json.Marshal(c.Spec)
	if err != nil {
		return nil, fmt.Errorf("encode spec of VPNConnection %s: %w", c.Name, err)
	}
	sum := sha256.Sum256([]byte(string(specJSON) + image + credDigest))
	labels := map[string]string{AppLabel: AppValue, ConnLabel: c.Name}
	tolerations := append([]corev1.Toleration{
		{Key: "node.kubernetes.io/not-ready", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To[int64](failoverSeconds)},
		{Key: "node.kubernetes.io/unreachable", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To[int64](failoverSeconds)},
	}, c.Spec.Tolerations...)
	fieldEnv := func(name, path string) corev1.EnvVar {
		return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}}
	}
	env := []corev1.EnvVar{
		{Name: EnvName, Value: c.Name},
		{Name: EnvSpec, Value: string(specJSON)},
		{Name: EnvGeneration, Value: strconv.FormatInt(c.Generation, 10)},
		{Name: EnvPodCIDR, Value: cl.PodCIDR.String()},
		{Name: EnvSvcCIDR, Value: cl.ServiceCIDR.String()},
		{Name: EnvRunDir, Value: runDir},
		{Name: EnvAPIServer, Value: cfg.APIServer},
		fieldEnv(EnvNodeName, "spec.nodeName"),
		fieldEnv(EnvNodeIP, "status.hostIP"),
		fieldEnv(EnvPodName, "metadata.name"),
	}
	// The credentials: the pre-shared key or the certificate Secret.
	credVol := corev1.Volume{Name: "psk", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: p.SecretName}}}
	credMount := corev1.VolumeMount{Name: "psk", MountPath: pskMountDir, ReadOnly: true}
	env = append(env, corev1.EnvVar{Name: EnvPSKFile, Value: pskMountDir + "/" + p.SecretKey})
	if p.UsesCertificates() {
		credVol = corev1.Volume{Name: "cert", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: p.CertSecret}}}
		credMount = corev1.VolumeMount{Name: "cert", MountPath: certMountDir, ReadOnly: true}
		env[len(env)-1] = corev1.EnvVar{Name: EnvCertDir, Value: certMountDir}
	}
	pod := corev1.PodSpec{
		HostNetwork:                   true,
		DNSPolicy:                     corev1.DNSClusterFirstWithHostNet,
		ServiceAccountName:            ServiceAccount,
		PriorityClassName:             "system-cluster-critical",
		TerminationGracePeriodSeconds: ptr.To[int64](5),
		NodeSelector:                  p.NodeSelector,
		Tolerations:                   tolerations,
		Affinity: &corev1.Affinity{NodeAffinity: zonesAffinity(p), PodAntiAffinity: &corev1.PodAntiAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
				LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{AppLabel: AppValue}},
				TopologyKey:   corev1.LabelHostname,
			}},
		}},
		Containers: []corev1.Container{{
			Name:            "charon",
			Image:           image,
			ImagePullPolicy: corev1.PullNever,
			Env:             env,
			SecurityContext: &corev1.SecurityContext{Privileged: ptr.To(true)},
			// Not BestEffort: ESP runs in charon's user space with
			// kernel-libipsec, and a BestEffort pod's CPU weight is minimal.
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("32Mi")}},
			VolumeMounts: []corev1.VolumeMount{
				credMount,
				{Name: "run", MountPath: runDir},
			},
		}},
		Volumes: []corev1.Volume{
			credVol,
			{Name: "run", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}}},
		},
	}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: DeploymentName(c.Name), Namespace: vpnconn.Namespace, Labels: labels,
			OwnerReferences: []metav1.OwnerReference{owner}},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: map[string]string{specHashAnnot: hex.EncodeToString(sum[:8])}},
				Spec:       pod,
			},
		},
	}, nil
}

// leaseAccess lets the gateways keep their Leases in kube-system only.
func leaseAccess() (*rbacv1.Role, *rbacv1.RoleBinding) {
	r := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: RoleGateway, Namespace: vpnconn.Namespace, Labels: managedBy},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"get", "create", "update"}}}}
	b := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: RoleGateway, Namespace: vpnconn.Namespace, Labels: managedBy},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: RoleGateway},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: ServiceAccount, Namespace: vpnconn.Namespace}}}
	return r, b
}

// accessObjects are the gateway's ServiceAccount and its right to read
// VPNConnections and write their status, and the nodes' right to read
// them (every agent routes).
func accessObjects() (*corev1.ServiceAccount, []*rbacv1.ClusterRole, []*rbacv1.ClusterRoleBinding) {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: ServiceAccount, Namespace: vpnconn.Namespace, Labels: managedBy}}
	gw := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: RoleGateway, Labels: managedBy}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{vpnconn.Group}, Resources: []string{vpnconn.Resource}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{vpnconn.Group}, Resources: []string{vpnconn.Resource + "/status"}, Verbs: []string{"get", "update", "patch"}},
		// zoneLoadBalancer: the gateway reads its node's zone.
		{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get"}},
	}}
	nodes := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: RoleNodeReader, Labels: managedBy}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{vpnconn.Group}, Resources: []string{vpnconn.Resource}, Verbs: []string{"get", "list", "watch"}},
	}}
	bind := func(role string, subj rbacv1.Subject) *rbacv1.ClusterRoleBinding {
		return &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: role, Labels: managedBy},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects: []rbacv1.Subject{subj}}
	}
	return sa, []*rbacv1.ClusterRole{gw, nodes}, []*rbacv1.ClusterRoleBinding{
		bind(RoleGateway, rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: ServiceAccount, Namespace: vpnconn.Namespace}),
		bind(RoleNodeReader, rbacv1.Subject{APIGroup: rbacv1.GroupName, Kind: rbacv1.GroupKind, Name: "system:nodes"}),
	}
}
