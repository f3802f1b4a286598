package vpn

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/iks-dev/iks/internal/vpnconn"
	"github.com/iks-dev/iks/tests/testutil"
)

func TestCheckSecret(t *testing.T) {
	ctx := context.Background()
	ca := testutil.NewTestCA(t, "CA")
	crt, key := ca.Issue(t, "ibm-cloud")
	secret := func(name string, data map[string][]byte) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: vpnconn.Namespace}, Data: data}
	}
	cs := fake.NewClientset(secret("psk", map[string][]byte{"psk": []byte("one")}), secret("empty", map[string][]byte{}),
		secret("cert", map[string][]byte{vpnconn.CertKey: crt, vpnconn.KeyKey: key, vpnconn.CAKey: ca.CertPEM}),
		secret("nokey", map[string][]byte{vpnconn.CertKey: crt, vpnconn.CAKey: ca.CertPEM}))
	c := &Controller{cs: cs, log: slog.New(slog.DiscardHandler)}
	plan := func(mod func(*vpnconn.Spec)) *vpnconn.Plan {
		s := vpnconn.Spec{Remote: vpnconn.Remote{Subnet: "10.91.152.128/26"}, Preshared: vpnconn.Preshared{SecretName: "psk"}}
		mod(&s)
		p, err := vpnconn.Validate("c", s, cluster)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	pskPlan := plan(func(*vpnconn.Spec) {})
	d1, err := c.checkSecret(ctx, pskPlan)
	if err != nil || d1 == "" {
		t.Fatalf("psk: %q %v", d1, err)
	}
	s, _ := cs.CoreV1().Secrets(vpnconn.Namespace).Get(ctx, "psk", metav1.GetOptions{})
	s.Data["psk"] = []byte("two")
	if _, err := cs.CoreV1().Secrets(vpnconn.Namespace).Update(ctx, s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if d2, err := c.checkSecret(ctx, pskPlan); err != nil || d2 == d1 {
		t.Errorf("a new pre-shared key gives digest %q (was %q), err %v: the gateway would not roll", d2, d1, err)
	}
	certPlan := func(secret string) *vpnconn.Plan {
		return plan(func(s *vpnconn.Spec) {
			s.Preshared, s.IPsec.AuthBy, s.Certificate.SecretName = vpnconn.Preshared{}, "pubkey", secret
		})
	}
	if d, err := c.checkSecret(ctx, certPlan("cert")); err != nil || d == "" {
		t.Errorf("certificate Secret: %q %v", d, err)
	}
	for name, tc := range map[string]struct {
		p    *vpnconn.Plan
		want string
	}{
		"no psk Secret":  {plan(func(s *vpnconn.Spec) { s.Preshared.SecretName = "none" }), "preshared.secretName: Secret kube-system/none not found"},
		"no psk key":     {plan(func(s *vpnconn.Spec) { s.Preshared.SecretName = "empty" }), `Secret kube-system/empty has no key "psk"`},
		"no cert Secret": {certPlan("none"), "certificate.secretName: Secret kube-system/none not found: create it with tls.crt, tls.key and ca.crt"},
		"no tls.key":     {certPlan("nokey"), "Secret kube-system/nokey has no tls.key"},
	} {
		if _, err := c.checkSecret(ctx, tc.p); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want %q", name, err, tc.want)
		}
	}
}

func TestCredentialsRollTheGateway(t *testing.T) {
	c := &vpnconn.Conn{Name: "c", Spec: vpnconn.Spec{Remote: vpnconn.Remote{Subnet: "10.91.152.128/26"}, Preshared: vpnconn.Preshared{SecretName: "psk"}}}
	p, err := vpnconn.Validate(c.Name, c.Spec, cluster)
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := gatewayDeployment(c, p, Config{Image: "i", Cluster: cluster}, "digest-1", metav1.OwnerReference{})
	d2, _ := gatewayDeployment(c, p, Config{Image: "i", Cluster: cluster}, "digest-2", metav1.OwnerReference{})
	if d1.Spec.Template.Annotations[specHashAnnot] == d2.Spec.Template.Annotations[specHashAnnot] {
		t.Error("new credentials must change the template (roll the gateway)")
	}
}

func TestConnsUsing(t *testing.T) {
	obj := func(name string, spec map[string]any) any {
		return &unstructured.Unstructured{Object: map[string]any{"metadata": map[string]any{"name": name}, "spec": spec}}
	}
	objs := []any{
		obj("a", map[string]any{"preshared": map[string]any{"secretName": "s1"}}),
		obj("b", map[string]any{"certificate": map[string]any{"secretName": "s1"}}),
		obj("c", map[string]any{"preshared": map[string]any{"secretName": "s2"}}),
	}
	if got := connsUsing(objs, "s1"); strings.Join(got, ",") != "a,b" {
		t.Errorf("connections using s1: %v", got)
	}
	if got := connsUsing(objs, "s3"); len(got) != 0 {
		t.Errorf("connections using s3: %v", got)
	}
}
