package token

import (
	"context"
	"fmt"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/iks-dev/iks/internal/kubeutil"
)

// AcceptTimeout bounds the wait for the apiserver to accept a token whose
// Secret was just written (its token authenticator reads Secrets through
// an informer, so a new Secret is seen a moment later).
const AcceptTimeout = 60 * time.Second

// waitAccepted polls probe until it succeeds, AcceptTimeout passes or ctx
// ends.
func waitAccepted(ctx context.Context, probe func(context.Context, Token) error, tok Token) error {
	ctx, cancel := context.WithTimeout(ctx, AcceptTimeout)
	defer cancel()
	var last error
	err := kubeutil.Poll(ctx, 100*time.Millisecond, func(ctx context.Context) (bool, error) {
		last = probe(ctx, tok)
		return last == nil, nil
	})
	if err != nil {
		return fmt.Errorf("the apiserver did not accept join token %s within %s: %w (last: %v)", tok.ID, AcceptTimeout, err, last)
	}
	return nil
}

// probeToken sends GET /api authenticated with the bootstrap token alone
// (the admin kubeconfig gives only the server address and CA), as a
// joining agent does: it fails while the apiserver answers 401.
func probeToken(ctx context.Context, kubeconfig string, tok Token) error {
	admin, err := kubeutil.RESTConfig(kubeconfig)
	if err != nil {
		return err
	}
	cfg := rest.AnonymousClientConfig(admin)
	cfg.BearerToken = tok.Bootstrap()
	cfg.Timeout = 5 * time.Second
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("client for token %s: %w", tok.ID, err)
	}
	if _, err := cs.Discovery().RESTClient().Get().AbsPath("/api").DoRaw(ctx); err != nil {
		return fmt.Errorf("GET /api with token %s: %w", tok.ID, err)
	}
	return nil
}
