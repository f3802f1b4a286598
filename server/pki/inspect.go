package pki

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// CAHashFile returns the hash CAHash gives for the CA certificate at path
// (the cluster CA of a data dir), without loading the whole PKI.
func CAHashFile(path string) (string, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("cluster CA %s not found: this data dir holds no cluster (was --data-dir right?)", path)
	}
	if err != nil {
		return "", fmt.Errorf("read cluster CA: %w", err)
	}
	cert, err := parseCertPEM(data)
	if err != nil {
		return "", fmt.Errorf("cluster CA %s: %w", path, err)
	}
	sum := sha256.Sum256(cert.Raw)
	return hex.EncodeToString(sum[:]), nil
}

// CertInfo describes one certificate file of the PKI.
type CertInfo struct {
	Service  string // what uses it, e.g. "kube-apiserver", "etcd"
	Path     string
	Subject  string
	CA       bool
	NotAfter time.Time
}

// Services are the names `iks certificate rotate --service` accepts, each
// with the base names (no .crt/.key) of its leaf files in the PKI dir.
var Services = map[string][]string{
	"admin":                   {"admin"},
	"kube-apiserver":          {"apiserver", apiserverChainName, "apiserver-kubelet-client", "apiserver-etcd-client"},
	"kube-controller-manager": {"controller-manager"},
	"kube-scheduler":          {"scheduler"},
	"kube-proxy":              {"kube-proxy"},
	"etcd":                    {"etcd/server", "etcd/peer"},
	"front-proxy":             {"front-proxy-client"},
	"kubelet":                 {kubeletPrefix + "*"},
}

// caFiles are the certificate authorities; `certificate rotate` keeps them.
var caFiles = map[string]string{"ca": "cluster CA", "front-proxy-ca": "front-proxy CA", "etcd/ca": "etcd CA"}

// ServiceNames returns the service names, sorted.
func ServiceNames() []string {
	names := make([]string, 0, len(Services))
	for n := range Services {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Inspect lists every certificate in the PKI dir with its service and
// expiry: CAs first, then leaves by service.
func Inspect(dir string) ([]CertInfo, error) {
	var out []CertInfo
	add := func(service, base string) error {
		p := filepath.Join(dir, base+".crt")
		data, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		cert, err := parseCertPEM(data)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		out = append(out, CertInfo{Service: service, Path: p, Subject: cert.Subject.CommonName, CA: cert.IsCA, NotAfter: cert.NotAfter})
		return nil
	}
	for _, base := range []string{"ca", "front-proxy-ca", "etcd/ca"} {
		if err := add(caFiles[base], base); err != nil {
			return nil, err
		}
	}
	for _, svc := range ServiceNames() {
		bases, err := expand(dir, Services[svc])
		if err != nil {
			return nil, err
		}
		for _, base := range bases {
			if base == apiserverChainName {
				continue // the apiserver certificate again, with the CA
			}
			if err := add(svc, base); err != nil {
				return nil, err
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no certificates in %s: is it a server's data dir (pass --data-dir)?", dir)
	}
	return out, nil
}

// expand resolves "kubelet-*" patterns to the files present.
func expand(dir string, bases []string) ([]string, error) {
	var out []string
	for _, b := range bases {
		if !strings.HasSuffix(b, "*") {
			out = append(out, b)
			continue
		}
		m, err := filepath.Glob(filepath.Join(dir, b+".crt"))
		if err != nil {
			return nil, err
		}
		for _, p := range m {
			out = append(out, strings.TrimSuffix(filepath.Base(p), ".crt"))
		}
	}
	return out, nil
}

// NeedsRenewal reports whether a start at now re-issues a leaf expiring at
// notAfter.
func NeedsRenewal(notAfter, now time.Time) bool { return now.Add(renewBefore).After(notAfter) }

// Rotate moves the leaf certificates and keys of the services (all when
// none) into <dir>/rotated-<unix seconds>/, keeping the CAs and the
// service-account key; the next server start issues new ones. It returns
// the backup dir. The server must be stopped (the caller holds its lock).
func Rotate(dir string, services []string, now time.Time) (string, error) {
	if len(services) == 0 {
		services = ServiceNames()
	}
	var bases []string
	for _, s := range services {
		b, ok := Services[s]
		if !ok {
			return "", fmt.Errorf("unknown service %q: use one of %s", s, strings.Join(ServiceNames(), ", "))
		}
		e, err := expand(dir, b)
		if err != nil {
			return "", err
		}
		bases = append(bases, e...)
	}
	backup := filepath.Join(dir, fmt.Sprintf("rotated-%d", now.Unix()))
	for _, base := range bases {
		for _, ext := range []string{".crt", ".key"} {
			src := filepath.Join(dir, base+ext)
			if _, err := os.Stat(src); errors.Is(err, fs.ErrNotExist) {
				continue
			}
			dst := filepath.Join(backup, base+ext)
			if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
				return "", fmt.Errorf("create %s: %w", filepath.Dir(dst), err)
			}
			if err := os.Rename(src, dst); err != nil {
				return "", fmt.Errorf("move %s aside: %w", src, err)
			}
		}
	}
	return backup, nil
}
