package etcd

import (
	"crypto/tls"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/iks-dev/iks/internal/config"
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

// NewDatastoreClient connects to where a server keeps the cluster state:
// the external etcd ds records (--datastore-endpoint), else the local
// member with the PKI in tlsDir. The caller closes it.
func NewDatastoreClient(ds *config.DatastoreInfo, tlsDir string) (*clientv3.Client, error) {
	if !ds.External() {
		return NewClient(LocalClientFiles(tlsDir))
	}
	return NewExternalClient(ds.Endpoints, ClientFiles{CA: ds.CAFile, Cert: ds.CertFile, Key: ds.KeyFile})
}

// NewExternalClient connects to the user's etcd at endpoints: over TLS
// with files f (empty names: none) unless the endpoints are http://.
func NewExternalClient(endpoints []string, f ClientFiles) (*clientv3.Client, error) {
	tlsCfg, err := ExternalTLS(endpoints, f)
	if err != nil {
		return nil, err
	}
	c, err := clientv3.New(clientv3.Config{Endpoints: endpoints, TLS: tlsCfg, DialTimeout: 5 * time.Second,
		Logger: zap.NewNop()})
	if err != nil {
		return nil, fmt.Errorf("connect to the external datastore %s: %w", strings.Join(endpoints, ","), err)
	}
	return c, nil
}

// ExternalTLS is the client TLS configuration for the user's etcd (nil
// for http:// endpoints).
func ExternalTLS(endpoints []string, f ClientFiles) (*tls.Config, error) {
	if len(endpoints) > 0 && strings.HasPrefix(endpoints[0], "http://") {
		return nil, nil
	}
	tlsCfg, err := transport.TLSInfo{CertFile: f.Cert, KeyFile: f.Key, TrustedCAFile: f.CA}.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("external datastore TLS (--datastore-cafile %q, --datastore-certfile %q, --datastore-keyfile %q): %w", f.CA, f.Cert, f.Key, err)
	}
	return tlsCfg, nil
}
