package rbac

import (
	"context"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/iks-dev/iks/internal/jointoken"
	"github.com/iks-dev/iks/internal/kubeapply"
	"github.com/iks-dev/iks/internal/netapi"
)

func TestApplyNodesCorrectsAndIsIdempotent(t *testing.T) {
	ctx := context.Background()
	// A binding with a wrong roleRef and subjects, and a role someone
	// widened and labelled.
	cs := fake.NewClientset(&rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: bindingBootstrap},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects:   []rbacv1.Subject{group("system:authenticated")},
	})
	if err := Apply(ctx, cs, Nodes()); err != nil {
		t.Fatal(err)
	}
	r, _ := cs.RbacV1().ClusterRoles().Get(ctx, RoleNodeRouting, metav1.GetOptions{})
	r.Rules[0].Verbs = append(r.Rules[0].Verbs, "delete")
	r.Labels["team"] = "net"
	if _, err := cs.RbacV1().ClusterRoles().Update(ctx, r, metav1.UpdateOptions{FieldManager: "kubectl-edit"}); err != nil {
		t.Fatal(err)
	}
	if err := Apply(ctx, cs, Nodes()); err != nil {
		t.Fatal(err)
	}
	r, err := cs.RbacV1().ClusterRoles().Get(ctx, RoleNodeRouting, metav1.GetOptions{})
	if err != nil || len(r.Rules) != 1 || r.Rules[0].Resources[0] != "nodes" || slices.Contains(r.Rules[0].Verbs, "delete") {
		t.Fatalf("ClusterRole %s after a widening edit: %+v %v; want read-only nodes again", RoleNodeRouting, r, err)
	}
	if r.Labels["team"] != "net" || r.Labels[kubeapply.ManagedByLabel] != "iks" {
		t.Errorf("labels %v: want the user's label kept beside managed-by=iks", r.Labels)
	}
	want := map[string][2]string{
		bindingBootstrap:      {jointoken.NodeGroup, roleNodeBootstrapper},
		bindingAutoApprove:    {jointoken.NodeGroup, roleNodeClient},
		bindingRenewOwnClient: {GroupNodes, roleSelfNodeClient},
		RoleNodeRouting:       {GroupNodes, RoleNodeRouting},
		BindingNodeProxier:    {GroupNodes, roleNodeProxier},
		RoleNodeBGPPeers:      {GroupNodes, RoleNodeBGPPeers},
		RoleNodeIPAM:          {GroupNodes, RoleNodeIPAM},
	}
	l, err := cs.RbacV1().ClusterRoleBindings().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Items) != len(want) {
		t.Fatalf("%d bindings, want %d", len(l.Items), len(want))
	}
	for _, b := range l.Items {
		w, ok := want[b.Name]
		if !ok {
			t.Errorf("unexpected binding %s", b.Name)
			continue
		}
		if b.RoleRef.Name != w[1] || b.RoleRef.Kind != "ClusterRole" {
			t.Errorf("%s roleRef = %+v, want ClusterRole %s", b.Name, b.RoleRef, w[1])
		}
		if len(b.Subjects) != 1 || b.Subjects[0].Kind != "Group" || b.Subjects[0].Name != w[0] {
			t.Errorf("%s subjects = %+v, want group %s", b.Name, b.Subjects, w[0])
		}
	}
	role, err := cs.RbacV1().Roles(netapi.ClusterNetworkNamespace).Get(ctx, RoleClusterNetwork, metav1.GetOptions{})
	if err != nil || len(role.Rules) != 1 || !slices.Equal(role.Rules[0].ResourceNames, []string{netapi.ClusterNetworkName}) ||
		!slices.Equal(role.Rules[0].Verbs, []string{"get"}) {
		t.Errorf("ConfigMap role %+v, %v: want get on %s only", role, err, netapi.ClusterNetworkName)
	}
	// A third apply with nothing to correct writes nothing.
	rvs := map[string]string{}
	for _, b := range l.Items {
		rvs[b.Name] = b.ResourceVersion
	}
	if err := Apply(ctx, cs, Nodes()); err != nil {
		t.Fatal(err)
	}
	l, _ = cs.RbacV1().ClusterRoleBindings().List(ctx, metav1.ListOptions{})
	for _, b := range l.Items {
		if rvs[b.Name] != b.ResourceVersion {
			t.Errorf("binding %s rewritten by an apply with nothing to change", b.Name)
		}
	}
}

func TestApplyRefusesOtherKinds(t *testing.T) {
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: "kube-system"}}
	err := Apply(context.Background(), fake.NewClientset(), []kubeapply.Object{cm})
	if err == nil || !strings.Contains(err.Error(), "*v1.ConfigMap is not an RBAC object") {
		t.Fatalf("Apply(ConfigMap) = %v, want a refusal naming the type", err)
	}
}
