package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	token "github.com/iks-dev/iks/internal/jointoken"

	"github.com/iks-dev/iks/internal/fsutil"
)

// Retry delays of Join: exponential from MinRetryDelay, capped.
const (
	MinRetryDelay = time.Second
	MaxRetryDelay = 30 * time.Second
	// RejectGrace is how long after its first attempt Join retries a
	// rejected token: a server that is still starting refuses a valid
	// token until the token's Secret reaches its authenticator.
	RejectGrace = time.Minute
)

// retryPolicy is how Join retries; tests shorten it.
type retryPolicy struct {
	minDelay, maxDelay, rejectGrace time.Duration
}

// File names Join writes in its directory.
const (
	CACertFile              = "ca.crt"
	BootstrapKubeconfigFile = "bootstrap.kubeconfig"
)

// bootstrapUser names the token user in the bootstrap kubeconfig (as
// kubeadm does).
const bootstrapUser = "tls-bootstrap-token-user"

// Result says what a successful Join wrote.
type Result struct {
	// CACert is <dir>/ca.crt, the verified cluster CA (mode 0644).
	CACert string
	// BootstrapKubeconfig is <dir>/bootstrap.kubeconfig (mode 0600): the
	// server URL, the CA and the bootstrap token, for kubelet's
	// --bootstrap-kubeconfig.
	BootstrapKubeconfig string
	// Attempts is how many times Verify ran.
	Attempts int
}

// Join verifies the server with Verify and, when node.Name is set, claims
// the node name for this machine (see package nodeclaim). It retries while
// the server is unreachable or starting (delays from MinRetryDelay doubling
// to MaxRetryDelay, one log line per attempt) until ctx ends; a rejected
// token is retried the same way during RejectGrace after the first
// attempt. A CA mismatch, a token still rejected after that or a node name
// taken by another machine fails. Only after success does it write,
// atomically, <dir>/ca.crt and <dir>/bootstrap.kubeconfig; on any failure
// nothing is written there.
func Join(ctx context.Context, serverURL string, tok token.Token, dir string, node Node, log *slog.Logger) (Result, error) {
	return join(ctx, serverURL, tok, dir, node, log, retryPolicy{MinRetryDelay, MaxRetryDelay, RejectGrace})
}

func join(ctx context.Context, serverURL string, tok token.Token, dir string, node Node, log *slog.Logger, p retryPolicy) (Result, error) {
	if dir == "" {
		return Result{}, errors.New("join: credentials directory is empty: pass the agent's credentials dir")
	}
	if node.Name != "" && node.KeyFile == "" {
		return Result{}, errors.New("join: node " + node.Name + " has no node password file")
	}
	log = log.With("component", "join")
	var (
		caPEM []byte
		err   error
		n     int
		start = time.Now()
	)
	for delay := p.minDelay; ; delay = nextDelay(delay, p.maxDelay) {
		n++
		caPEM, err = attempt(ctx, serverURL, tok, node)
		if err == nil {
			break
		}
		elapsed := time.Since(start)
		switch {
		case isTransient(err):
			log.Warn(fmt.Sprintf("%v; retrying in %s", err, delay), "attempt", n)
		case errors.Is(err, ErrTokenRejected) && elapsed < p.rejectGrace:
			// The last retry comes when the grace ends.
			delay = min(delay, p.rejectGrace-elapsed)
			log.Warn(fmt.Sprintf("%v; the server may still be starting: retrying in %s (for up to %s)",
				err, delay.Round(time.Millisecond), p.rejectGrace), "attempt", n)
		default:
			return Result{}, err
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return Result{}, fmt.Errorf("gave up joining %s after %d attempts: %w (last error: %v)", serverURL, n, context.Cause(ctx), err)
		case <-t.C:
		}
	}
	res := Result{CACert: filepath.Join(dir, CACertFile), BootstrapKubeconfig: filepath.Join(dir, BootstrapKubeconfigFile), Attempts: n}
	if err := writeCredentials(res, serverURL, caPEM, tok); err != nil {
		return Result{}, err
	}
	log.Info("server verified against the token's CA and token accepted", "server", serverURL,
		"ca", res.CACert, "kubeconfig", res.BootstrapKubeconfig, "node", node.Name)
	return res, nil
}

// attempt runs Verify and, when a node name is given, claims it.
func attempt(ctx context.Context, serverURL string, tok token.Token, node Node) ([]byte, error) {
	caPEM, err := Verify(ctx, serverURL, tok)
	if err != nil || node.Name == "" {
		return caPEM, err
	}
	u, err := parseServerURL(serverURL)
	if err != nil {
		return nil, err
	}
	if err := claimName(ctx, u, caPEM, tok, node); err != nil {
		return nil, err
	}
	return caPEM, nil
}

// nextDelay doubles d up to maxDelay.
func nextDelay(d, maxDelay time.Duration) time.Duration {
	return min(2*d, maxDelay)
}

// writeCredentials writes the CA and the bootstrap kubeconfig. If the
// kubeconfig cannot be written, a CA file this call created is removed.
func writeCredentials(res Result, serverURL string, caPEM []byte, tok token.Token) error {
	kc, err := bootstrapKubeconfig(serverURL, caPEM, tok)
	if err != nil {
		return err
	}
	dir := filepath.Dir(res.CACert)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create credentials dir %s: %w (check that the data dir is writable)", dir, err)
	}
	_, statErr := os.Stat(res.CACert)
	hadCA := statErr == nil
	if err := fsutil.WriteFileAtomic(res.CACert, caPEM, 0o600); err != nil {
		return err
	}
	if err := fsutil.WriteFileAtomic(res.BootstrapKubeconfig, kc, 0o600); err != nil {
		if !hadCA {
			_ = os.Remove(res.CACert)
		}
		return err
	}
	return nil
}

// bootstrapKubeconfig renders the kubeconfig kubelet uses for its TLS
// bootstrap: the CA embedded, the bootstrap token as the user's token.
func bootstrapKubeconfig(serverURL string, caPEM []byte, tok token.Token) ([]byte, error) {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["iks"] = &clientcmdapi.Cluster{Server: serverURL, CertificateAuthorityData: caPEM}
	cfg.AuthInfos[bootstrapUser] = &clientcmdapi.AuthInfo{Token: tok.Bootstrap()}
	cfg.Contexts["iks"] = &clientcmdapi.Context{Cluster: "iks", AuthInfo: bootstrapUser}
	cfg.CurrentContext = "iks"
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		return nil, fmt.Errorf("encode bootstrap kubeconfig: %w", err)
	}
	return data, nil
}
