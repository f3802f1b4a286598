package pki

import (
	"bytes"
	"fmt"
	"log/slog"

	"github.com/iks-dev/iks/internal/fsutil"
)

// apiserverChainName is the base name of the apiserver's serving chain.
const apiserverChainName = "apiserver-chain"

// ensureAPIServerChain keeps APIServerChainCert equal to the apiserver
// certificate followed by the cluster CA certificate. Serving the chain
// (kube-apiserver --tls-cert-file) puts the CA into every TLS handshake, so
// a joining agent can find the CA its token pins and verify the apiserver
// against it before it sends the token. The file is rewritten only when its
// content differs, so an unchanged PKI leaves it byte-for-byte alone.
func (p *PKI) ensureAPIServerChain(log *slog.Logger) error {
	leafPEM, ok, err := readOptional(p.APIServerCert)
	if err != nil {
		return fmt.Errorf("apiserver certificate chain: %w", err)
	}
	if !ok {
		return fmt.Errorf("apiserver certificate chain: %s is missing; it is issued by Ensure, run it first", p.APIServerCert)
	}
	leaf, err := parseCertPEM(leafPEM)
	if err != nil {
		return fmt.Errorf("apiserver certificate chain: %s: %w", p.APIServerCert, err)
	}
	if err := leaf.CheckSignatureFrom(p.ca.cert); err != nil {
		return fmt.Errorf("apiserver certificate chain: %s is not signed by the cluster CA %s: %w; "+
			"delete it so that Ensure issues a new one", p.APIServerCert, p.CACert, err)
	}
	chain := append(encodeCertPEM(leaf.Raw), encodeCertPEM(p.ca.cert.Raw)...)
	old, ok, err := readOptional(p.APIServerChainCert)
	if err != nil {
		return fmt.Errorf("apiserver certificate chain: %w", err)
	}
	if ok && bytes.Equal(old, chain) {
		return nil
	}
	if err := fsutil.WriteFileAtomic(p.APIServerChainCert, chain, certMode); err != nil {
		return fmt.Errorf("apiserver certificate chain: %w", err)
	}
	log.Info("wrote apiserver certificate chain", "cert", p.APIServerChainCert)
	return nil
}
