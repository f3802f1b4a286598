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
	// Probe, when set, replaces the check that the apiserver accepts the
	// token (tests); by default a GET /api authenticated with the token
	// must succeed.
	Probe func(context.Context, Token) error
}

// Tokens is the server component that makes the server's join token
// usable and then records it: it ensures the token's bootstrap Secret (no
// expiry) and the RBAC that lets join tokens bootstrap kubelets, waits
// until the apiserver accepts the token, and only then writes
// <data-dir>/server/token, so that an agent started the instant the file
// appears is not refused. Start it after kube-apiserver.
type Tokens struct {
	cfg Config
	log *slog.Logger

	mu       sync.Mutex
	tok      Token
	recorded bool
}

// New returns the component.
func New(cfg Config, log *slog.Logger) *Tokens {
	return &Tokens{cfg: cfg, log: log.With("component", "tokens")}
}

// Name implements component.Component.
func (t *Tokens) Name() string { return "tokens" }

// Init picks the server's token: the one recorded in
// <data-dir>/server/token, checked against --token, or on the first start
// a new one (derived from --token, or random), which Start records.
func (t *Tokens) Init(context.Context) error {
	if t.cfg.Kubeconfig == "" && t.cfg.Client == nil {
		return errors.New("tokens: no admin kubeconfig configured: set Config.Kubeconfig")
	}
	tok, recorded, err := ResolveServerToken(t.cfg.DataDir, t.cfg.CAHash, t.cfg.FromFlag)
	if err != nil {
		return err
	}
	t.mu.Lock()
	t.tok, t.recorded = tok, recorded
	t.mu.Unlock()
	return nil
}

// Token returns the server's join token; valid after Init.
func (t *Tokens) Token() Token {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.tok
}

// Start ensures the server token's Secret. It
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
		// The RBAC this token's joiners use is the server's node-rbac
		// step (server/noderbac.go), applied before this.
		return EnsureSecret(ctx, cs, tok, ServerTokenDescription)
	})
	if err != nil {
		return fmt.Errorf("tokens: %w", err)
	}
	probe := t.cfg.Probe
	if probe == nil {
		probe = func(ctx context.Context, tok Token) error { return probeToken(ctx, t.cfg.Kubeconfig, tok) }
	}
	if err := waitAccepted(ctx, probe, tok); err != nil {
		return fmt.Errorf("tokens: %w", err)
	}
	t.mu.Lock()
	recorded := t.recorded
	t.mu.Unlock()
	if !recorded {
		if err := RecordServerToken(t.cfg.DataDir, tok); err != nil {
			return err
		}
		t.mu.Lock()
		t.recorded = true
		t.mu.Unlock()
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
