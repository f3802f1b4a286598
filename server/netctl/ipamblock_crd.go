package netctl

import (
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/iks-dev/iks/internal/kubeapply"
	"github.com/iks-dev/iks/internal/netapi"
)

// IPAMBlockCRD is the definition of ipamblocks.network.iks.io: a
// cluster-scoped block of the pod range claimed by one node. The name is
// tied to the CIDR, and spec (cidr, node) cannot change once created, so a
// block cannot be moved or resized behind the owning node's back.
func IPAMBlockCRD() *apiextv1.CustomResourceDefinition {
	str := func(desc string, maxLen int64) apiextv1.JSONSchemaProps {
		return apiextv1.JSONSchemaProps{Type: "string", Description: desc, MaxLength: &maxLen, MinLength: ptr(int64(1)),
			XValidations: apiextv1.ValidationRules{{Rule: "self == oldSelf", Message: "is immutable: delete the block and claim another"}}}
	}
	cidr := str("The block, an IPv4 network prefix such as 172.30.0.64/26.", 18)
	cidr.XValidations = append(cidr.XValidations, apiextv1.ValidationRule{
		Rule:    "isCIDR(self) && cidr(self).ip().family() == 4 && cidr(self) == cidr(self).masked()",
		Message: "must be an IPv4 network prefix without host bits, such as 172.30.0.64/26",
	})
	count := apiextv1.JSONSchemaProps{Type: "integer", Minimum: ptr(float64(0))}
	schema := &apiextv1.JSONSchemaProps{
		Type:     "object",
		Required: []string{"spec"},
		Properties: map[string]apiextv1.JSONSchemaProps{
			"spec": {
				Type:        "object",
				Description: "What the block is and which node owns it; immutable.",
				Required:    []string{"cidr", "node"},
				Properties: map[string]apiextv1.JSONSchemaProps{
					"cidr": cidr,
					"node": str("Name of the node that owns the block.", 253),
				},
			},
			"status": {
				Type:        "object",
				Description: "Usage reported by the owning node's agent.",
				Properties: map[string]apiextv1.JSONSchemaProps{
					"allocated": withDesc(count, "Addresses handed to pods."),
					"capacity":  withDesc(count, "Addresses pods can get from the block (all but the first and last)."),
				},
			},
		},
		XValidations: apiextv1.ValidationRules{{
			Rule:    "self.metadata.name == self.spec.cidr.replace('.', '-').replace('/', '-')",
			Message: "metadata.name must be spec.cidr with '.' and '/' written as '-', e.g. 172-30-0-64-26 for 172.30.0.64/26",
		}},
	}
	col := func(name, typ, path string) apiextv1.CustomResourceColumnDefinition {
		return apiextv1.CustomResourceColumnDefinition{Name: name, Type: typ, JSONPath: path}
	}
	return &apiextv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: netapi.IPAMBlockCRDName, Labels: managedBy},
		Spec: apiextv1.CustomResourceDefinitionSpec{
			Group: netapi.Group,
			Scope: apiextv1.ClusterScoped,
			Names: apiextv1.CustomResourceDefinitionNames{
				Plural: netapi.IPAMBlockPlural, Singular: "ipamblock", Kind: netapi.IPAMBlockKind,
				ListKind: netapi.IPAMBlockList, ShortNames: []string{"ipb"}, Categories: []string{"iks"},
			},
			Versions: []apiextv1.CustomResourceDefinitionVersion{{
				Name: netapi.Version, Served: true, Storage: true,
				Schema:           &apiextv1.CustomResourceValidation{OpenAPIV3Schema: schema},
				Subresources:     &apiextv1.CustomResourceSubresources{Status: &apiextv1.CustomResourceSubresourceStatus{}},
				SelectableFields: []apiextv1.SelectableField{{JSONPath: "." + netapi.NodeField}},
				AdditionalPrinterColumns: []apiextv1.CustomResourceColumnDefinition{
					col("CIDR", "string", ".spec.cidr"),
					col("Node", "string", ".spec.node"),
					col("Allocated", "integer", ".status.allocated"),
					col("Capacity", "integer", ".status.capacity"),
					col("Age", "date", ".metadata.creationTimestamp"),
				},
			}},
		},
	}
}

func withDesc(p apiextv1.JSONSchemaProps, desc string) apiextv1.JSONSchemaProps {
	p.Description = desc
	return p
}

func ptr[T any](v T) *T { return &v }

var managedBy = map[string]string{kubeapply.ManagedByLabel: "iks"}
