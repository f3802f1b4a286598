package lb

import (
	"fmt"
	"net/netip"

	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/iks-dev/iks/internal/kubeapply"
	"github.com/iks-dev/iks/internal/lbpool"
)

// labelValuePattern is a Kubernetes label value (zones, VLANs).
const labelValuePattern = `^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$`

// PortableSubnetCRD is the definition of portablesubnets.network.iks.io.
// Its schema refuses at admission what the flags refuse: a type other
// than public/private, a CIDR that is not an IPv4 network of /20 to /29,
// one overlapping the pod or service range (avoid), a zone or VLAN that
// is not a label value, and any change of the spec. Overlaps between
// subnets are reported by the controller (a Warning event).
func PortableSubnetCRD(avoid ...netip.Prefix) *apiextv1.CustomResourceDefinition {
	cidr := apiextv1.JSONSchemaProps{Type: "string", MaxLength: ptrTo(int64(18)),
		Description: "The subnet, an IPv4 network of /20 to /29: 3 reserved addresses, 1 ALB address, the rest for LoadBalancer services.",
		XValidations: apiextv1.ValidationRules{{
			Rule:    fmt.Sprintf("isCIDR(self) && cidr(self).ip().family() == 4 && cidr(self) == cidr(self).masked() && cidr(self).prefixLength() >= %d && cidr(self).prefixLength() <= %d", lbpool.MinBits, lbpool.MaxBits),
			Message: fmt.Sprintf("must be an IPv4 network address with a prefix length from /%d to /%d, such as 10.0.2.64/29", lbpool.MinBits, lbpool.MaxBits),
		}}}
	for _, p := range avoid {
		if !p.IsValid() {
			continue
		}
		cidr.XValidations = append(cidr.XValidations, apiextv1.ValidationRule{
			Rule:    fmt.Sprintf("!isCIDR(self) || !(cidr(self).containsIP('%s') || cidr('%s').containsIP(cidr(self).ip()))", p.Addr(), p),
			Message: fmt.Sprintf("overlaps %s, which iks routes to pods or services: use a subnet outside it", p),
		})
	}
	label := func(desc string) apiextv1.JSONSchemaProps {
		return apiextv1.JSONSchemaProps{Type: "string", Description: desc, MinLength: ptrTo(int64(1)), MaxLength: ptrTo(int64(63)), Pattern: labelValuePattern}
	}
	spec := apiextv1.JSONSchemaProps{
		Type:     "object",
		Required: []string{"type", "cidr"},
		Properties: map[string]apiextv1.JSONSchemaProps{
			"type": {Type: "string", Description: "public or private: the side whose interfaces hold its IPs.",
				Enum: []apiextv1.JSON{{Raw: []byte(`"public"`)}, {Raw: []byte(`"private"`)}}},
			"cidr": cidr,
			"zone": label("Zone of the subnet: only nodes of this zone hold its IPs (default: the zone of the nodes on its network)."),
			"vlan": label("VLAN of the subnet, as in the nodes' publicVLAN/privateVLAN labels (default: the nodes whose interface network contains the subnet)."),
		},
		XValidations: apiextv1.ValidationRules{{Rule: "self == oldSelf", Message: "is immutable: delete the PortableSubnet and add a new one"}},
	}
	col := func(name, path string) apiextv1.CustomResourceColumnDefinition {
		return apiextv1.CustomResourceColumnDefinition{Name: name, Type: "string", JSONPath: path}
	}
	return &apiextv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: lbpool.ResourceCRDName, Labels: map[string]string{kubeapply.ManagedByLabel: "iks"}},
		Spec: apiextv1.CustomResourceDefinitionSpec{
			Group: lbpool.ResourceGroup,
			Scope: apiextv1.ClusterScoped,
			Names: apiextv1.CustomResourceDefinitionNames{Plural: lbpool.ResourcePlural, Singular: "portablesubnet",
				Kind: lbpool.ResourceKind, ListKind: lbpool.ResourceListKind, ShortNames: []string{"psn"}, Categories: []string{"iks"}},
			Versions: []apiextv1.CustomResourceDefinitionVersion{{
				Name: lbpool.ResourceVersion, Served: true, Storage: true,
				Schema: &apiextv1.CustomResourceValidation{OpenAPIV3Schema: &apiextv1.JSONSchemaProps{
					Type: "object", Required: []string{"spec"}, Properties: map[string]apiextv1.JSONSchemaProps{"spec": spec}}},
				AdditionalPrinterColumns: []apiextv1.CustomResourceColumnDefinition{
					col("Type", ".spec.type"), col("CIDR", ".spec.cidr"), col("Zone", ".spec.zone"), col("VLAN", ".spec.vlan"),
					{Name: "Age", Type: "date", JSONPath: ".metadata.creationTimestamp"},
				},
			}},
		},
	}
}

func ptrTo[T any](v T) *T { return &v }
