package ha

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/iks-dev/iks/internal/kubeapply"
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
	// Who may read it is granted with the rest in server/rbac.
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: SecretName, Namespace: SecretNamespace},
		Type: "iks.io/server-bootstrap", Data: map[string][]byte{secretKey: sealed}}
	cur, err := cs.CoreV1().Secrets(SecretNamespace).Get(ctx, SecretName, metav1.GetOptions{})
	if err == nil {
		if old, oerr := Open(cur.Data[secretKey], tok); oerr == nil && sameBundle(old, b) {
			return nil // sealing again would only change the nonce
		}
	} else if !apierrors.IsNotFound(err) {
		return fmt.Errorf("read the server bootstrap bundle: %w", err)
	}
	if _, err := kubeapply.Replace(ctx, cs.CoreV1().Secrets(SecretNamespace), s); err != nil {
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
