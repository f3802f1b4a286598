package main

import (
	"context"
	"fmt"

	"github.com/strongswan/govici/vici"
)

// loadCredentials gives charon the pre-shared key (load-shared) or the
// CA, the cluster's certificate chain (load-cert) and its private key
// (load-key).
func (g *gateway) loadCredentials(ctx context.Context, s *vici.Session) error {
	p := g.e.Plan
	if !p.UsesCertificates() {
		shared, err := p.LoadShared(g.e.PSK)
		if err != nil {
			return err
		}
		if _, err := s.Call(ctx, "load-shared", shared); err != nil {
			return fmt.Errorf("vici load-shared: %w", err)
		}
		return nil
	}
	certs, err := g.e.Cred.LoadCerts()
	if err != nil {
		return fmt.Errorf("certificate Secret %s: %w", p.CertSecret, err)
	}
	for _, m := range certs {
		if _, err := s.Call(ctx, "load-cert", m); err != nil {
			return fmt.Errorf("vici load-cert (Secret %s): %w", p.CertSecret, err)
		}
	}
	key, err := g.e.Cred.LoadKey()
	if err != nil {
		return fmt.Errorf("certificate Secret %s: %w", p.CertSecret, err)
	}
	if _, err := s.Call(ctx, "load-key", key); err != nil {
		return fmt.Errorf("vici load-key (Secret %s): %w", p.CertSecret, err)
	}
	g.log.Info("certificates loaded into charon", "secret", p.CertSecret, "certificates", len(certs))
	return nil
}
