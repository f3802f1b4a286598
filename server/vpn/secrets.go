package vpn

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"

	"github.com/iks-dev/iks/internal/vpnconn"
)

// checkSecret reports a missing pre-shared key Secret or key, or a
// missing or unusable certificate Secret. It returns a digest of the
// credentials the gateway uses: it is part of the gateway's template,
// so a new key or certificate rolls the gateway (within the informer's
// resync) and reaches charon.
func (c *Controller) checkSecret(ctx context.Context, p *vpnconn.Plan) (string, error) {
	name := p.SecretName
	if p.UsesCertificates() {
		name = p.CertSecret
	}
	s, err := c.cs.CoreV1().Secrets(vpnconn.Namespace).Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err) && p.UsesCertificates():
		return "", fmt.Errorf("certificate.secretName: Secret %s/%s not found: create it with %s, %s and %s (e.g. kubectl create secret generic -n %s %s --from-file=tls.crt --from-file=tls.key --from-file=ca.crt)",
			vpnconn.Namespace, name, vpnconn.CertKey, vpnconn.KeyKey, vpnconn.CAKey, vpnconn.Namespace, name)
	case apierrors.IsNotFound(err):
		return "", fmt.Errorf("preshared.secretName: Secret %s/%s not found: create it with the pre-shared key under %q", vpnconn.Namespace, name, p.SecretKey)
	case err != nil:
		return "", fmt.Errorf("read Secret %s/%s: %w", vpnconn.Namespace, name, err)
	}
	keys := []string{p.SecretKey}
	if p.UsesCertificates() {
		if err := vpnconn.CheckCredentials(name, s.Data); err != nil {
			return "", err
		}
		keys = []string{vpnconn.CertKey, vpnconn.KeyKey, vpnconn.CAKey}
	} else if len(s.Data[p.SecretKey]) == 0 {
		return "", fmt.Errorf("preshared: Secret %s/%s has no key %q: put the pre-shared key there or set preshared.key", vpnconn.Namespace, name, p.SecretKey)
	}
	h := sha256.New()
	for _, k := range keys {
		fmt.Fprintf(h, "%s=%d:", k, len(s.Data[k]))
		h.Write(s.Data[k])
	}
	return hex.EncodeToString(h.Sum(nil)[:8]), nil
}

// watchSecrets re-checks the connections naming a Secret of Namespace
// when it changes: a Secret created after its connection makes it valid
// at once, and a rotated key or certificate rolls the gateway at once.
func (c *Controller) watchSecrets(ctx context.Context, conns cache.Store) error {
	f := informers.NewSharedInformerFactoryWithOptions(c.cs, 10*time.Minute, informers.WithNamespace(vpnconn.Namespace))
	changed := func(o any) {
		if d, ok := o.(cache.DeletedFinalStateUnknown); ok {
			o = d.Obj
		}
		if s, ok := o.(*corev1.Secret); ok {
			for _, name := range connsUsing(conns.List(), s.Name) {
				c.queue.Add(name)
			}
		}
	}
	_, err := f.Core().V1().Secrets().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: changed,
		UpdateFunc: func(_, n any) { changed(n) }, DeleteFunc: changed})
	if err != nil {
		return fmt.Errorf("vpn: watch Secrets in %s: %w", vpnconn.Namespace, err)
	}
	f.Start(ctx.Done())
	return nil
}

// connsUsing returns the names of the connections (unstructured) whose
// pre-shared key or certificate is in Secret secret.
func connsUsing(objs []any, secret string) []string {
	var out []string
	for _, o := range objs {
		u, ok := o.(*unstructured.Unstructured)
		if !ok {
			continue
		}
		conn, err := vpnconn.FromUnstructured(u)
		if err == nil && (conn.Spec.Preshared.SecretName == secret || conn.Spec.Certificate.SecretName == secret) {
			out = append(out, conn.Name)
		}
	}
	return out
}
