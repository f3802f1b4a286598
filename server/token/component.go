package token

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	"github.com/iks-dev/iks/internal/kubeutil"
)

// Config of the Tokens component.
type Config struct {
	// DataDir is the server's data dir; the token is kept in
	// <DataDir>/server/token.
	DataDir string
	// CAHash pins the cluster CA (pki.PKI.CAHash()).
	CAHash string
	// FromFlag is the server's --token value, "" for a random token.
	FromFlag string
	// Kubeconfig is the admin kubeconfig used to write Secrets and RBAC.
	Kubeconfig string
	// Client, when set, is used instead of Kubeconfig (tests).
	Client kubernetes.Interface
}

// Tokens is the server component that records the server's join token and,
// once the apiserver is ready, makes it usable: it ensures the token's
// bootstrap Secret (no expiry) and the RBAC that lets join tokens
// bootstrap kubelets. Start it after kube-apiserver.
type Tokens struct {
	cfg Config
	log *slog.Logger

	mu  sync.Mutex
	tok Token
}

// New returns the component.
func New(cfg Config, log *slog.Logger) *Tokens {
	return &Tokens{cfg: cfg, log: log.With("component", "tokens")}
}

// Name implements component.Component.
func (t *Tokens) Name() string { return "tokens" }

// Init writes <data-dir>/server/token on the first start and checks it
// (and --token) on later ones.
func (t *Tokens) Init(context.Context) error {
	if t.cfg.Kubeconfig == "" && t.cfg.Client == nil {
		return errors.New("tokens: no admin kubeconfig configured: set Config.Kubeconfig")
	}
	tok, err := EnsureServerToken(t.cfg.DataDir, t.cfg.CAHash, t.cfg.FromFlag)
	if err != nil {
		return err
	}
	t.mu.Lock()
	t.tok = tok
	t.mu.Unlock()
	return nil
}

// Token returns the server's join token; valid after Init.
func (t *Tokens) Token() Token {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.tok
}

// Start ensures the server token's Secret and the bootstrap RBAC. It
// retries conflicts and server-side transient errors until ctx ends.
func (t *Tokens) Start(ctx context.Context) error {
	tok := t.Token()
	if tok.ID == "" {
		return errors.New("tokens: Start called before Init")
	}
	cs := t.cfg.Client
	if cs == nil {
		c, err := kubeutil.Clientset(t.cfg.Kubeconfig)
		if err != nil {
			return err
		}
		cs = c
	}
	backoff := wait.Backoff{Duration: 200 * time.Millisecond, Factor: 2, Steps: 8, Cap: 5 * time.Second}
	err := retry.OnError(backoff, transient, func() error {
		if err := EnsureSecret(ctx, cs, tok, ServerTokenDescription); err != nil {
			return err
		}
		return EnsureRBAC(ctx, cs)
	})
	if err != nil {
		return fmt.Errorf("tokens: %w", err)
	}
	t.log.Info("join token ready: join agents with `iks agent --server https://<this host>:6443 --token <token>`",
		"token-file", ServerTokenPath(t.cfg.DataDir), "id", tok.ID)
	return nil
}

// Stop implements component.Component; there is nothing to stop.
func (t *Tokens) Stop(context.Context) error { return nil }

// transient reports API errors worth retrying.
func transient(err error) bool {
	return apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) || apierrors.IsServerTimeout(err) ||
		apierrors.IsTimeout(err) || apierrors.IsTooManyRequests(err) || apierrors.IsServiceUnavailable(err) ||
		apierrors.IsInternalError(err)
}
