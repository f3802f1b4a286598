package kubelet

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/kubernetes/pkg/kubelet/certificate/bootstrap"
)

// ClientCert obtains the kubelet's client certificate by TLS bootstrap
// (a CSR with the join token, approved by the server), exactly as the
// kubelet does on its first start (the same upstream code, the same
// files: Kubeconfig and pki/kubelet-client-current.pem), so that it can
// run while containerd starts instead of after it. The kubelet then finds
// a valid kubeconfig and skips the bootstrap; it still rotates the
// certificate. Only a first join does this: once the kubeconfig exists
// (a restart), renewing or re-bootstrapping an expired certificate stays
// the kubelet's, in the background as before, so a restart never waits
// on the server here.
func (k *Kubelet) ClientCert(ctx context.Context) error {
	if k.cfg.BootstrapKubeconfig == "" {
		return nil
	}
	if _, err := os.Stat(k.cfg.Kubeconfig); err == nil {
		return nil
	}
	t0 := time.Now()
	// The kubelet's own wait for the server and for the signed
	// certificate are bounded by its own timeouts; the start is too.
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if err := bootstrap.LoadClientCert(ctx, k.cfg.Kubeconfig, k.cfg.BootstrapKubeconfig, k.cfg.certDir(), types.NodeName(k.cfg.NodeName)); err != nil {
		return fmt.Errorf("kubelet client certificate (TLS bootstrap with %s): %w; check on the server that the join token still exists (`iks token list`) and that its csr-approver runs, then start the agent again", k.cfg.BootstrapKubeconfig, err)
	}
	k.log.Info("kubelet client certificate ready", "kubeconfig", k.cfg.Kubeconfig, "took", time.Since(t0).Round(time.Millisecond).String())
	return nil
}

func (c Config) certDir() string { return filepath.Join(c.RootDir, "pki") }
