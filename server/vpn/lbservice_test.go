package vpn

import (
	"net/netip"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apiextinternal "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/iks-dev/iks/internal/lbpool"
	"github.com/iks-dev/iks/internal/vpnconn"
)

func TestLBIPProblem(t *testing.T) {
	private, err := lbpool.Parse(lbpool.Private, "--portable-private-subnet", "10.87.1.96/29")
	if err != nil {
		t.Fatal(err)
	}
	subnets := []lbpool.Subnet{private}
	lb := func(ns, name, ip string) corev1.Service {
		s := corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer}}
		s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: ip}}
		return s
	}
	own := "kube-system/iks-vpn-c"
	svcs := []corev1.Service{lb("default", "web", "10.87.1.101"), lb("kube-system", "iks-vpn-c", "10.87.1.100")}
	if err := lbIPProblem(netip.MustParseAddr("10.87.1.100"), subnets, svcs, own); err != nil {
		t.Errorf("the connection's own IP: %v", err)
	}
	asked := corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "pending"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, LoadBalancerIP: "10.87.1.102"}}
	for ip, want := range map[string]string{
		"10.87.1.50":  "loadBalancerIP 10.87.1.50 is outside the portable subnets (they are private 10.87.1.96/29)",
		"10.87.1.97":  "loadBalancerIP 10.87.1.97 is reserved in the portable subnet 10.87.1.96/29",
		"10.87.1.99":  "give one of 10.87.1.100 to 10.87.1.103",
		"10.87.1.101": "loadBalancerIP 10.87.1.101 is taken by Service default/web",
		"10.87.1.102": "taken by Service default/pending",
	} {
		err := lbIPProblem(netip.MustParseAddr(ip), subnets, append(svcs, asked), own)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err %v, want %q", ip, err, want)
		}
	}
	if err := lbIPProblem(netip.MustParseAddr("10.87.1.100"), nil, nil, own); err == nil || !strings.Contains(err.Error(), "the cluster has none") {
		t.Errorf("no pools: %v", err)
	}
}

func TestLBService(t *testing.T) {
	s := lbService("c", netip.MustParseAddr("10.87.1.100"), metav1.OwnerReference{Name: "c"})
	if s.Name != "iks-vpn-c" || s.Namespace != vpnconn.Namespace || s.Spec.Type != corev1.ServiceTypeLoadBalancer || s.Spec.LoadBalancerIP != "10.87.1.100" {
		t.Errorf("service %s/%s %s %s", s.Namespace, s.Name, s.Spec.Type, s.Spec.LoadBalancerIP)
	}
	if s.Spec.ExternalTrafficPolicy != corev1.ServiceExternalTrafficPolicyLocal {
		t.Error("externalTrafficPolicy must be Local: the remote's address must reach charon and the IP must sit on the gateway's node")
	}
	if len(s.Spec.Ports) != 2 || s.Spec.Ports[0].Port != 500 || s.Spec.Ports[1].Port != 4500 || s.Spec.Ports[0].Protocol != corev1.ProtocolUDP {
		t.Errorf("ports %v, want UDP 500 and 4500", s.Spec.Ports)
	}
	if s.Spec.Selector[ConnLabel] != "c" || s.Spec.Selector[AppLabel] != AppValue || len(s.OwnerReferences) != 1 {
		t.Errorf("selector %v owners %v", s.Spec.Selector, s.OwnerReferences)
	}
}

func TestGatewayDeploymentCertificatesAndZone(t *testing.T) {
	c := &vpnconn.Conn{Name: "certs", Spec: vpnconn.Spec{IPsec: vpnconn.IPsec{AuthBy: "pubkey"},
		Certificate: vpnconn.Certificate{SecretName: "site-cert"}, Remote: vpnconn.Remote{Subnet: "10.91.152.128/26"}, ZoneSelector: "dal10"}}
	p, err := vpnconn.Validate(c.Name, c.Spec, cluster)
	if err != nil {
		t.Fatal(err)
	}
	d, err := gatewayDeployment(c, p, Config{Image: "i", Cluster: cluster}, "", metav1.OwnerReference{})
	if err != nil {
		t.Fatal(err)
	}
	pod := d.Spec.Template.Spec
	if pod.NodeSelector["topology.kubernetes.io/zone"] != "dal10" {
		t.Errorf("node selector %v: want zoneSelector's zone", pod.NodeSelector)
	}
	if pod.Volumes[0].Secret == nil || pod.Volumes[0].Secret.SecretName != "site-cert" || pod.Containers[0].VolumeMounts[0].MountPath != certMountDir {
		t.Errorf("certificate Secret not mounted: %+v %+v", pod.Volumes[0], pod.Containers[0].VolumeMounts[0])
	}
	env := map[string]string{}
	for _, e := range pod.Containers[0].Env {
		env[e.Name] = e.Value
	}
	if env[EnvCertDir] != certMountDir || env[EnvPSKFile] != "" {
		t.Errorf("env %v: want the certificate directory and no pre-shared key file", env)
	}
}

// The CRD must be structural (connectUsingLoadBalancerIP has no type: a
// string or a boolean).
func TestCRDStructural(t *testing.T) {
	var internal apiextinternal.JSONSchemaProps
	if err := apiextv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(CRD().Spec.Versions[0].Schema.OpenAPIV3Schema, &internal, nil); err != nil {
		t.Fatal(err)
	}
	s, err := structuralschema.NewStructural(&internal)
	if err != nil {
		t.Fatal(err)
	}
	if errs := structuralschema.ValidateStructural(nil, s); len(errs) > 0 {
		t.Fatalf("not structural: %v", errs)
	}
	spec := CRD().Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"]
	for _, f := range []string{"certificate", "loadBalancerIP", "zoneSelector"} {
		if _, ok := spec.Properties[f]; !ok {
			t.Errorf("spec.%s missing", f)
		}
	}
	if _, ok := spec.Properties["ipsec"].Properties["authby"]; !ok {
		t.Error("spec.ipsec.authby missing")
	}
}
