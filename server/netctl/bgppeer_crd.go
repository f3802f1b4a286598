package netctl

import (
	"context"

	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiext "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/iks-dev/iks/internal/bgppeer"
)

// BGPPeerCRD is the CustomResourceDefinition of bgppeers.network.iks.io.
// Its schema refuses a peerIP that is not IPv4, an asNumber outside
// 1-4294967295 and a peer with both node and nodeSelector; a selector's
// syntax is checked by the BGPPeer controller (event InvalidBGPPeer).
func BGPPeerCRD() *apiextv1.CustomResourceDefinition {
	str := func(desc string) apiextv1.JSONSchemaProps {
		return apiextv1.JSONSchemaProps{Type: "string", Description: desc}
	}
	peerIP := str("IPv4 address of the external BGP router")
	peerIP.Format = "ipv4"
	peerIP.Pattern = `^(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])){3}$`
	spec := apiextv1.JSONSchemaProps{
		Type:     "object",
		Required: []string{"peerIP", "asNumber"},
		Properties: map[string]apiextv1.JSONSchemaProps{
			"peerIP": peerIP,
			"asNumber": {Type: "integer", Format: "int64", Minimum: ptr(1.0), Maximum: ptr(4294967295.0),
				Description: "AS of the router: the cluster's AS gives iBGP, another AS eBGP multihop"},
			"nodeSelector": str("Calico-style selector of the nodes that peer, e.g. rack == 'a' && has(edge); empty or all() for every node"),
			"node":         str("the one node that peers (instead of nodeSelector)"),
		},
		XValidations: apiextv1.ValidationRules{{Rule: "!(has(self.node) && has(self.nodeSelector))", Message: "set node or nodeSelector, not both"}},
	}
	return &apiextv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: bgppeer.Resource + "." + bgppeer.Group, Labels: managedBy},
		Spec: apiextv1.CustomResourceDefinitionSpec{
			Group: bgppeer.Group,
			Names: apiextv1.CustomResourceDefinitionNames{Plural: bgppeer.Resource, Singular: "bgppeer", Kind: bgppeer.Kind, ListKind: bgppeer.Kind + "List"},
			Scope: apiextv1.ClusterScoped,
			Versions: []apiextv1.CustomResourceDefinitionVersion{{
				Name: bgppeer.Version, Served: true, Storage: true,
				Schema: &apiextv1.CustomResourceValidation{OpenAPIV3Schema: &apiextv1.JSONSchemaProps{
					Type:       "object",
					Required:   []string{"spec"},
					Properties: map[string]apiextv1.JSONSchemaProps{"spec": spec},
				}},
				AdditionalPrinterColumns: []apiextv1.CustomResourceColumnDefinition{
					{Name: "Peer IP", Type: "string", JSONPath: ".spec.peerIP"},
					{Name: "AS", Type: "integer", JSONPath: ".spec.asNumber"},
					{Name: "Selector", Type: "string", JSONPath: ".spec.nodeSelector"},
					{Name: "Node", Type: "string", JSONPath: ".spec.node"},
				},
			}},
		},
	}
}

// installBGPPeerCRD creates or updates the BGPPeer CRD and waits until it
// is served.
func installBGPPeerCRD(ctx context.Context, client apiext.Interface) error {
	return EnsureCRD(ctx, client, BGPPeerCRD())
}
