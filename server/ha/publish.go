package ha

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/iks-dev/iks/internal/kubeutil"
	tokenpkg "github.com/iks-dev/iks/server/token"
)

// Publisher is the server component that keeps the bundle Secret and the
// RBAC letting join tokens read it. Start it after the tokens component.
type Publisher struct {
	DataDir    string
	Kubeconfig string
	Log        *slog.Logger
}

// Name implements component.Component.
func (p *Publisher) Name() string { return "server-bootstrap" }

// Init implements component.Component.
func (p *Publisher) Init(context.Context) error { return nil }

// Stop implements component.Component.
func (p *Publisher) Stop(context.Context) error { return nil }

// Start publishes the bundle.
func (p *Publisher) Start(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	tok, err := tokenpkg.ReadServerToken(p.DataDir)
	if err != nil {
		return err
	}
	b, err := ReadBundle(p.DataDir)
	if err != nil {
		return err
	}
	sealed, err := b.Seal(tok)
	if err != nil {
		return err
	}
	cs, err := kubeutil.Clientset(p.Kubeconfig)
	if err != nil {
		return err
	}
	if err := ensureRBAC(ctx, cs); err != nil {
		return err
	}
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: SecretName, Namespace: SecretNamespace},
		Type: "iks.io/server-bootstrap", Data: map[string][]byte{secretKey: sealed}}
	cur, err := cs.CoreV1().Secrets(SecretNamespace).Get(ctx, SecretName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = cs.CoreV1().Secrets(SecretNamespace).Create(ctx, s, metav1.CreateOptions{})
	case err == nil:
		if old, oerr := Open(cur.Data[secretKey], tok); oerr == nil && sameBundle(old, b) {
			return nil
		}
		cur.Data = s.Data
		_, err = cs.CoreV1().Secrets(SecretNamespace).Update(ctx, cur, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("publish the server bootstrap bundle: %w", err)
	}
	p.Log.Info("server bootstrap bundle published", "secret", SecretNamespace+"/"+SecretName)
	return nil
}

func sameBundle(a, b Bundle) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if string(b[k]) != string(v) {
			return false
		}
	}
	return true
}

// ensureRBAC lets bootstrap tokens get the bundle Secret, and nothing else.
func ensureRBAC(ctx context.Context, cs kubernetes.Interface) error {
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: SecretName, Namespace: SecretNamespace},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"},
			ResourceNames: []string{SecretName}, Verbs: []string{"get"}}}}
	if _, err := cs.RbacV1().Roles(SecretNamespace).Create(ctx, role, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create role %s: %w", SecretName, err)
	}
	rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: SecretName, Namespace: SecretNamespace},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: SecretName},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "system:bootstrappers"}}}
	if _, err := cs.RbacV1().RoleBindings(SecretNamespace).Create(ctx, rb, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create role binding %s: %w", SecretName, err)
	}
	// Agents' load balancers learn the apiservers from the kubernetes
	// Service's EndpointSlices.
	ep := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "iks-apiserver-endpoints", Namespace: metav1.NamespaceDefault},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"},
			Verbs: []string{"get", "list", "watch"}}}}
	if _, err := cs.RbacV1().Roles(ep.Namespace).Create(ctx, ep, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create role %s: %w", ep.Name, err)
	}
	epb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: ep.Name, Namespace: ep.Namespace},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: ep.Name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "system:nodes"}}}
	if _, err := cs.RbacV1().RoleBindings(ep.Namespace).Create(ctx, epb, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create role binding %s: %w", epb.Name, err)
	}
	return nil
}
