package vpn

import (
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/iks-dev/iks/internal/vpnconn"
)

// CRD is the CustomResourceDefinition of vpnconnections.network.iks.io.
// The schema checks the enumerations (ipsec.auto, ipsec.keyexchange,
// ipsec.authby); connectUsingLoadBalancerIP (a string or a boolean),
// subnets, NAT pairs and their overlaps are
// checked by the controller, which reports them in condition Valid.
func CRD() *apiextv1.CustomResourceDefinition {
	str := func(desc string) apiextv1.JSONSchemaProps {
		return apiextv1.JSONSchemaProps{Type: "string", Description: desc}
	}
	enum := func(desc string, vals ...string) apiextv1.JSONSchemaProps {
		s := str(desc)
		for _, v := range vals {
			s.Enum = append(s.Enum, apiextv1.JSON{Raw: []byte(`"` + v + `"`)})
		}
		return s
	}
	obj := func(desc string, props map[string]apiextv1.JSONSchemaProps) apiextv1.JSONSchemaProps {
		return apiextv1.JSONSchemaProps{Type: "object", Description: desc, Properties: props}
	}
	preserve := true
	spec := obj("A strongSwan IPsec connection to a remote site, with the options of the IKS strongSwan chart.", map[string]apiextv1.JSONSchemaProps{
		"ipsec": obj("IPsec options (chart ipsec.*)", map[string]apiextv1.JSONSchemaProps{
			"auto":        enum("add (default): wait for the remote to connect; start: connect to remote.gateway", "add", "start"),
			"keyexchange": enum("ikev2 (default), ikev1 or ike (either)", "ikev2", "ikev1", "ike"),
			"ike":         str("IKE proposals, ipsec.conf style, e.g. aes256-sha256-modp2048!; a trailing ! allows only those"),
			"esp":         str("ESP proposals, ipsec.conf style, e.g. aes256-sha256!"),
			"ikelifetime": str("IKE SA lifetime (default 3h)"),
			"lifetime":    str("CHILD SA lifetime (default 1h)"),
			"authby":      enum("psk (default): pre-shared key (preshared); pubkey: certificates (certificate)", "psk", "secret", "pubkey", "rsasig", "ecdsasig"),
			// Checked by the controller (condition Valid names the value).
			"closeaction": str("when the remote closes the CHILD SA: auto (default: restart with ipsec.auto start, none otherwise), none, clear, hold or restart"),
			"dpdaction":   str("when the remote stops answering dead peer detection: restart (default), none (no DPD), clear or hold"),
			"keyingtries": {Description: "attempts to negotiate an SA before giving up: %forever (default) or a positive number",
				XIntOrString: true, AnyOf: []apiextv1.JSONSchemaProps{{Type: "integer"}, {Type: "string"}}},
			"margintime": str("rekeying starts this long before ikelifetime/lifetime end (default 9m)"),
			"additionalOptions": {Description: "refused (raw ipsec.conf lines): use the typed ipsec.* fields",
				XPreserveUnknownFields: &preserve},
		}),
		"local": obj("The cluster side", map[string]apiextv1.JSONSchemaProps{
			"id":         str("IKE identity of the cluster (default ibm-cloud; %nodePublicIP: the gateway node's public address, %loadBalancerIP: the load balancer IP)"),
			"zoneSubnet": {Description: "refused (per-zone local.subnet): give local.subnet", XPreserveUnknownFields: &preserve},
			"subnet":     str("comma-separated CIDRs the remote reaches (default: the pod and service ranges)"),
		}),
		"remote": obj("The remote site", map[string]apiextv1.JSONSchemaProps{
			"gateway":         str("the remote VPN gateway's address or DNS name (default %any: accept any; ipsec.auto start needs one)"),
			"id":              str("IKE identity of the remote (default on-prem)"),
			"subnet":          str("comma-separated CIDRs of the remote site (required)"),
			"privateIPtoPing": str("an address of the remote subnet that `iks vpn check` pings"),
		}),
		"localSubnetNAT":       str("ORIGINAL=MAPPED,...: cluster subnets seen by the remote as MAPPED (inside local.subnet)"),
		"remoteSubnetNAT":      str("REAL=MAPPED,...: remote subnets the cluster reaches at MAPPED"),
		"enableSingleSourceIP": {Type: "boolean", Description: "all cluster traffic to the remote takes the one address of local.subnet (a /32)"},
		"preshared": obj("The pre-shared key", map[string]apiextv1.JSONSchemaProps{
			"secretName": str("Secret in kube-system holding the key"),
			"key":        str("key of the Secret's data (default psk)"),
		}),
		"certificate": obj("Certificate authentication (ipsec.authby pubkey)", map[string]apiextv1.JSONSchemaProps{
			"secretName": str("Secret in kube-system with tls.crt (the cluster's certificate), tls.key (its key) and ca.crt (the CA of the remote's certificate)"),
		}),
		"nodeSelector": {Type: "object", Description: "nodes eligible to run the gateway",
			AdditionalProperties: &apiextv1.JSONSchemaPropsOrBool{Schema: &apiextv1.JSONSchemaProps{Type: "string"}}},
		"zoneSelector":       str("zone whose nodes may run the gateway (their label topology.kubernetes.io/zone), besides nodeSelector"),
		"zoneSpecificRoutes": {Type: "boolean", Description: "only nodes of zoneSelector's zone route the remote subnets to the gateway; the others blackhole them"},
		"tolerations": {Type: "array", Description: "tolerations of the gateway pod",
			Items: &apiextv1.JSONSchemaPropsOrArray{Schema: &apiextv1.JSONSchemaProps{Type: "object", XPreserveUnknownFields: &preserve}}},
		"loadBalancerIP": str("free IP of a portable subnet: a LoadBalancer Service kube-system/iks-vpn-NAME on it forwards UDP 500/4500 to the gateway"),
		"zoneLoadBalancer": {Description: "each zone's load balancer IP, ZONE=IP lines (or a map): a Service iks-vpn-NAME-ZONE per zone; the gateway uses its zone's IP",
			XPreserveUnknownFields: &preserve},
		// auto, true or false, quoted or not (as Helm values): any type
		// here, the controller checks it.
		"connectUsingLoadBalancerIP": {Description: "auto (default: when loadBalancerIP is set and ipsec.auto is start), true or false: charon connects from loadBalancerIP",
			XPreserveUnknownFields: &preserve},
		"localNonClusterSubnet": str("comma-separated subnets outside the cluster (inside local.subnet) the remote reaches through the gateway node, which masquerades that traffic"),
		"enableServiceSourceIP": {Type: "boolean", Description: "the chart's externalTrafficPolicy Local on the loadBalancerIP Service: iks's Service always keeps the remote's source address"},
		"strongswanLogging":     str("charon's log levels in the gateway pod's log, one SUBSYSTEM = LEVEL (-1..4) a line (default: default = 1, cfg = 2, dmn = 2, ike = 2, net = 0)"),
		"monitoring": {Description: "the chart's Slack monitoring: only enable false is accepted (watch condition Established, run `iks vpn check`)",
			XPreserveUnknownFields: &preserve},
		"overRideIpsecConf":    {Description: "refused (a whole ipsec.conf): use the typed fields", XPreserveUnknownFields: &preserve},
		"overRideIpsecSecrets": {Description: "refused (a whole ipsec.secrets): use preshared or certificate", XPreserveUnknownFields: &preserve},
		"enablePodSNAT": {Description: "auto (default: when local.subnet leaves the pod range out), true or false: pod traffic to the remote takes the gateway node's address",
			XPreserveUnknownFields: &preserve},
	})
	spec.Required = []string{"remote"}
	status := apiextv1.JSONSchemaProps{Type: "object", XPreserveUnknownFields: &preserve}
	col := func(name, path string) apiextv1.CustomResourceColumnDefinition {
		return apiextv1.CustomResourceColumnDefinition{Name: name, Type: "string", JSONPath: path}
	}
	return &apiextv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: vpnconn.CRDName, Labels: map[string]string{"app.kubernetes.io/managed-by": "iks"}},
		Spec: apiextv1.CustomResourceDefinitionSpec{
			Group: vpnconn.Group,
			Scope: apiextv1.ClusterScoped,
			Names: apiextv1.CustomResourceDefinitionNames{Plural: vpnconn.Resource, Singular: "vpnconnection", Kind: vpnconn.Kind,
				ListKind: vpnconn.Kind + "List", ShortNames: []string{"vpn"}, Categories: []string{"iks"}},
			Versions: []apiextv1.CustomResourceDefinitionVersion{{
				Name: vpnconn.Version, Served: true, Storage: true,
				Subresources: &apiextv1.CustomResourceSubresources{Status: &apiextv1.CustomResourceSubresourceStatus{}},
				Schema: &apiextv1.CustomResourceValidation{OpenAPIV3Schema: &apiextv1.JSONSchemaProps{
					Type: "object", Required: []string{"spec"},
					Properties: map[string]apiextv1.JSONSchemaProps{"spec": spec, "status": status}}},
				AdditionalPrinterColumns: []apiextv1.CustomResourceColumnDefinition{
					col("Remote", ".spec.remote.gateway"), col("Subnet", ".spec.remote.subnet"),
					col("Valid", `.status.conditions[?(@.type=="Valid")].status`),
					col("Established", `.status.conditions[?(@.type=="Established")].status`),
					col("Reason", `.status.conditions[?(@.type=="Established")].reason`),
					col("Gateway", ".status.gateway.node"),
					{Name: "Age", Type: "date", JSONPath: ".metadata.creationTimestamp"},
				},
			}},
		},
	}
}
