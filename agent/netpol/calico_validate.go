package netpol

import (
	"slices"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// ValidateCalico runs the translation every agent runs on one Calico
// object of resource gr, and returns what would make the agents leave it
// out (a selector that lexes but does not parse, a tier iks lacks, a bad
// CIDR, ...), so that the apiserver can refuse it at admission instead
// and the dataplane keeps its last good state; nil for a resource that is
// not one of Calico's.
func ValidateCalico(gr schema.GroupResource, u *unstructured.Unstructured) error {
	i := slices.IndexFunc(CalicoResources, func(r schema.GroupVersionResource) bool { return r.GroupResource() == gr })
	if i < 0 {
		return nil
	}
	_, _, _, err := translateOne(CalicoResources[i], u)
	return err
}
