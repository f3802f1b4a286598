package rbac

import (
	"context"
	"fmt"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/iks-dev/iks/internal/kubeapply"
)

// Apply applies objs (RBAC kinds only) in order. A binding whose roleRef
// changed is replaced: roleRef cannot change in place.
func Apply(ctx context.Context, cs kubernetes.Interface, objs []kubeapply.Object) error {
	r := cs.RbacV1()
	for _, o := range objs {
		var err error
		switch o := o.(type) {
		case *rbacv1.ClusterRole:
			_, err = kubeapply.Apply(ctx, r.ClusterRoles(), o)
		case *rbacv1.Role:
			_, err = kubeapply.Apply(ctx, r.Roles(o.Namespace), o)
		case *rbacv1.ClusterRoleBinding:
			_, err = kubeapply.Replace(ctx, r.ClusterRoleBindings(), o)
		case *rbacv1.RoleBinding:
			_, err = kubeapply.Replace(ctx, r.RoleBindings(o.Namespace), o)
		default:
			err = fmt.Errorf("rbac.Apply: %T is not an RBAC object", o)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
