// Package rbac is the one place to read what iks grants beyond upstream
// Kubernetes' bootstrap roles: every ClusterRole, Role and binding the
// server creates for nodes and their agents, with why. The exceptions
// live beside the resources they grant: manifests/network-policy.yaml
// (what every node's policy engine may read, with the Calico CRDs it
// reads), the add-ons that run as pods (their ServiceAccounts' RBAC in
// manifests/*.yaml: CoreDNS, the ALB) and the VPN gateway's
// (server/vpn/objects.go, applied through Apply here).
//
// Every node's agent runs with its kubelet's identity, system:node:NAME
// in group system:nodes. The Node authorizer lets it read only its own
// Node and the objects of its own pods; what the agent needs beyond that
// is granted here, read-only wherever possible.
package rbac

import (
	coordinationv1 "k8s.io/api/coordination/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/iks-dev/iks/internal/bgppeer"
	"github.com/iks-dev/iks/internal/jointoken"
	"github.com/iks-dev/iks/internal/kubeapply"
	"github.com/iks-dev/iks/internal/lbpool"
	"github.com/iks-dev/iks/internal/netapi"

	"github.com/iks-dev/iks/internal/api"
)

// Subjects and upstream ClusterRoles (created by kube-apiserver's RBAC
// bootstrap) the grants refer to.
const (
	GroupNodes           = api.NodesGroup
	roleNodeBootstrapper = "system:node-bootstrapper"
	roleNodeClient       = "system:certificates.k8s.io:certificatesigningrequests:nodeclient"
	roleSelfNodeClient   = "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient"
	roleNodeProxier      = "system:node-proxier"
	BindingNodeProxier   = "iks-node-proxier"
	RoleNodeRouting      = "iks-node-routing"
	RoleNodeIPAM         = "iks-node-ipam"
	RoleClusterNetwork   = "iks-cluster-network-reader"
	RoleNodeBGPPeers     = "iks-node-bgppeers"
	RoleLBSpeaker        = "iks-lb-speaker"
	RoleLBPools          = "iks-lb-pools"
	// ServerBootstrapSecret is the Secret joining servers read (sealed
	// with the server token; server/ha), RoleAPIServerEndpoints lets
	// agents' API load balancers list the apiservers.
	ServerBootstrapSecret  = "iks-server-bootstrap"
	RoleAPIServerEndpoints = "iks-apiserver-endpoints"
	groupBootstrappers     = "system:bootstrappers"
	bindingBootstrap       = "iks-kubelet-bootstrap"
	bindingAutoApprove     = "iks-node-autoapprove-bootstrap"
	bindingRenewOwnClient  = "iks-node-autoapprove-certificate-rotation"
)

var read = []string{"get", "list", "watch"}

// Nodes returns what every node gets, roles before their bindings:
//   - join tokens (group jointoken.NodeGroup) may create node-client
//     CSRs, which kube-controller-manager approves; nodes may renew
//     their own client certificates;
//   - the routing agent lists all Nodes (its BGP mesh) and reads BGPPeers;
//   - kube-proxy, with the kubelet's identity, gets upstream's
//     system:node-proxier (Services, EndpointSlices, Nodes, Events);
//   - block IPAM claims and reports IPAMBlocks (the admission policy
//     iks-node-own-ipamblocks narrows writes to a node's own blocks) and
//     reads the address plan, kube-system/iks-cluster-network, and no
//     other ConfigMap;
//   - the agent's API load balancer lists the apiservers (the kubernetes
//     Service's EndpointSlices in default);
//   - any bootstrap token may get the one Secret a joining server needs,
//     sealed with the server token, which only that token opens.
func Nodes() []kubeapply.Object {
	return []kubeapply.Object{
		clusterRole(RoleNodeRouting, rule("", "nodes", read...)),
		clusterRole(RoleNodeBGPPeers, rule(bgppeer.Group, bgppeer.Resource, read...)),
		clusterRole(RoleNodeIPAM,
			rule(netapi.Group, netapi.IPAMBlockPlural, "create", "get", "list", "watch", "update", "patch", "delete"),
			rule(netapi.Group, netapi.IPAMBlockPlural+"/status", "update")),
		role(netapi.ClusterNetworkNamespace, RoleClusterNetwork,
			named(rule("", "configmaps", "get"), netapi.ClusterNetworkName)),
		clusterBinding(bindingBootstrap, group(jointoken.NodeGroup), roleNodeBootstrapper),
		clusterBinding(bindingAutoApprove, group(jointoken.NodeGroup), roleNodeClient),
		clusterBinding(bindingRenewOwnClient, group(GroupNodes), roleSelfNodeClient),
		clusterBinding(RoleNodeRouting, group(GroupNodes), RoleNodeRouting),
		clusterBinding(BindingNodeProxier, group(GroupNodes), roleNodeProxier),
		clusterBinding(RoleNodeBGPPeers, group(GroupNodes), RoleNodeBGPPeers),
		clusterBinding(RoleNodeIPAM, group(GroupNodes), RoleNodeIPAM),
		binding(netapi.ClusterNetworkNamespace, RoleClusterNetwork, group(GroupNodes), RoleClusterNetwork),
		role(metav1.NamespaceDefault, RoleAPIServerEndpoints, rule(discoveryv1.GroupName, "endpointslices", read...)),
		binding(metav1.NamespaceDefault, RoleAPIServerEndpoints, group(GroupNodes), RoleAPIServerEndpoints),
		role(metav1.NamespaceSystem, ServerBootstrapSecret, named(rule("", "secrets", "get"), ServerBootstrapSecret)),
		binding(metav1.NamespaceSystem, ServerBootstrapSecret, group(groupBootstrappers), ServerBootstrapSecret),
	}
}

// LBSpeaker returns what the LoadBalancer speakers need, least privilege,
// applied by the LB controller once namespace lbpool.Namespace exists.
// Nodes may read Services, EndpointSlices and Nodes (eligibility), the
// pools ConfigMap, and impersonate the single user lbpool.SpeakerUser,
// who alone may write Leases, and only in lbpool.Namespace. Impersonation
// is needed because the NodeRestriction admission plugin refuses node
// identities any Lease outside kube-node-lease.
func LBSpeaker() []kubeapply.Object {
	return []kubeapply.Object{
		clusterRole(RoleLBSpeaker,
			rule("", "services", read...), rule("", "nodes", read...),
			rule(discoveryv1.GroupName, "endpointslices", read...),
			named(rule("", "users", "impersonate"), lbpool.SpeakerUser)),
		role(lbpool.ConfigMapNamespace, RoleLBPools, named(rule("", "configmaps", read...), lbpool.ConfigMapName)),
		role(lbpool.Namespace, RoleLBSpeaker,
			rule(coordinationv1.GroupName, "leases", "get", "list", "watch", "create", "update", "patch", "delete")),
		clusterBinding(RoleLBSpeaker, group(GroupNodes), RoleLBSpeaker),
		binding(lbpool.ConfigMapNamespace, RoleLBPools, group(GroupNodes), RoleLBPools),
		binding(lbpool.Namespace, RoleLBSpeaker, user(lbpool.SpeakerUser), RoleLBSpeaker),
	}
}

func rule(apiGroup, resource string, verbs ...string) rbacv1.PolicyRule {
	return rbacv1.PolicyRule{APIGroups: []string{apiGroup}, Resources: []string{resource}, Verbs: verbs}
}

func named(r rbacv1.PolicyRule, names ...string) rbacv1.PolicyRule {
	r.ResourceNames = names
	return r
}

func group(name string) rbacv1.Subject {
	return rbacv1.Subject{APIGroup: rbacv1.GroupName, Kind: rbacv1.GroupKind, Name: name}
}

func user(name string) rbacv1.Subject {
	return rbacv1.Subject{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: name}
}

func objectMeta(ns, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{kubeapply.ManagedByLabel: "iks"}}
}

func clusterRole(name string, rules ...rbacv1.PolicyRule) *rbacv1.ClusterRole {
	return &rbacv1.ClusterRole{ObjectMeta: objectMeta("", name), Rules: rules}
}

func role(ns, name string, rules ...rbacv1.PolicyRule) *rbacv1.Role {
	return &rbacv1.Role{ObjectMeta: objectMeta(ns, name), Rules: rules}
}

func clusterBinding(name string, s rbacv1.Subject, clusterRole string) *rbacv1.ClusterRoleBinding {
	return &rbacv1.ClusterRoleBinding{ObjectMeta: objectMeta("", name), Subjects: []rbacv1.Subject{s},
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: clusterRole}}
}

func binding(ns, name string, s rbacv1.Subject, role string) *rbacv1.RoleBinding {
	return &rbacv1.RoleBinding{ObjectMeta: objectMeta(ns, name), Subjects: []rbacv1.Subject{s},
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role}}
}
