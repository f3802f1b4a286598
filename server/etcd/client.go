package etcd

import (
	"fmt"
	"path/filepath"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// ClientFiles are the TLS files a client of the local member uses: the
// apiserver's etcd client identity, under the server's PKI dir.
type ClientFiles struct{ CA, Cert, Key string }

// LocalClientFiles returns the client files of the PKI in tlsDir.
func LocalClientFiles(tlsDir string) ClientFiles {
	return ClientFiles{
		CA:   filepath.Join(tlsDir, "etcd", "ca.crt"),
		Cert: filepath.Join(tlsDir, "apiserver-etcd-client.crt"),
		Key:  filepath.Join(tlsDir, "apiserver-etcd-client.key"),
	}
}

// NewClient connects to the etcd members at endpoints (ClientURL when
// none) over mutual TLS. The caller closes it.
func NewClient(f ClientFiles, endpoints ...string) (*clientv3.Client, error) {
	if len(endpoints) == 0 {
		endpoints = []string{ClientURL}
	}
	tlsCfg, err := transport.TLSInfo{CertFile: f.Cert, KeyFile: f.Key, TrustedCAFile: f.CA}.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("etcd client TLS (%s, %s): %w; run this on a server, as root", f.Cert, f.CA, err)
	}
	c, err := clientv3.New(clientv3.Config{Endpoints: endpoints, TLS: tlsCfg, DialTimeout: 5 * time.Second,
		Logger: zap.NewNop()})
	if err != nil {
		return nil, fmt.Errorf("connect to etcd at %v: %w", endpoints, err)
	}
	return c, nil
}
