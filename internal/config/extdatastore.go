package config

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// External datastore (--datastore-endpoint): as in k3s, the servers keep
// the cluster state in the user's etcd instead of an embedded member. iks
// speaks etcd only (k3s's kine SQL backends are not embedded). Endpoints
// are https:// URLs; http:// is accepted, as k3s does, but only without
// TLS files, and the server warns at start that the cluster state then
// crosses the network in clear. This file checks the values offline; the
// server reaches the endpoints before writing anything (server/datastore.go).

// Datastore kinds recorded in cluster.json.
const (
	DatastoreEmbedded = "embedded"
	DatastoreExternal = "external"
)

// ExternalDatastore is the validated external etcd configuration.
type ExternalDatastore struct {
	Endpoints []string
	// CAFile verifies the etcd servers ("" uses the host's roots);
	// CertFile and KeyFile are the client identity ("" for none).
	CAFile, CertFile, KeyFile string
}

// Insecure reports whether the endpoints are plain http.
func (e *ExternalDatastore) Insecure() bool {
	return len(e.Endpoints) > 0 && strings.HasPrefix(e.Endpoints[0], "http://")
}

// DatastoreInfo is cluster.json's record of where a server keeps the
// cluster state: its kind cannot change on a data dir; the endpoints and
// files are what the last start used (read by iks etcd-snapshot, iks
// secrets-encrypt and iks server remove).
type DatastoreInfo struct {
	Kind      string   `json:"kind"`
	Endpoints []string `json:"endpoints,omitempty"`
	CAFile    string   `json:"caFile,omitempty"`
	CertFile  string   `json:"certFile,omitempty"`
	KeyFile   string   `json:"keyFile,omitempty"`
}

// External reports whether d is an external datastore (nil: embedded,
// as in data dirs written before the record existed).
func (d *DatastoreInfo) External() bool { return d != nil && d.Kind == DatastoreExternal }

// Info is what cluster.json records of the datastore d.
func (d Datastore) Info() *DatastoreInfo {
	if d.External == nil {
		return &DatastoreInfo{Kind: DatastoreEmbedded}
	}
	e := d.External
	return &DatastoreInfo{Kind: DatastoreExternal, Endpoints: e.Endpoints, CAFile: e.CAFile, CertFile: e.CertFile, KeyFile: e.KeyFile}
}

// validateExternal checks the --datastore-* values; it returns nil when no
// endpoint is given.
func (f *DatastoreFlags) validateExternal(bad func(string, ...any)) *ExternalDatastore {
	var eps []string
	for _, v := range f.Endpoints {
		for _, ep := range strings.Split(v, ",") {
			if ep = strings.TrimSpace(ep); ep != "" {
				eps = append(eps, strings.TrimRight(ep, "/"))
			}
		}
	}
	if len(eps) == 0 {
		for _, fl := range []struct{ name, v string }{{"--datastore-cafile", f.CAFile}, {"--datastore-certfile", f.CertFile}, {"--datastore-keyfile", f.KeyFile}} {
			if fl.v != "" {
				bad("%s %q is given without --datastore-endpoint: pass the external etcd's endpoints too (--datastore-endpoint https://ETCD:2379), or drop %s to use the embedded etcd", fl.name, fl.v, fl.name)
			}
		}
		return nil
	}
	// Absolute paths: cluster.json records them for the etcd commands,
	// which may run from another directory.
	e := &ExternalDatastore{Endpoints: eps, CAFile: absPath(f.CAFile), CertFile: absPath(f.CertFile), KeyFile: absPath(f.KeyFile)}
	schemes := map[string]bool{}
	for _, ep := range eps {
		u, err := url.Parse(ep)
		switch {
		case kineScheme(ep):
			bad("--datastore-endpoint %q: iks supports etcd only (k3s's kine SQL and NATS datastores are not embedded); pass etcd client URLs such as https://etcd1:2379,https://etcd2:2379", ep)
			continue
		case err == nil && u.User != nil:
			bad("--datastore-endpoint %q holds credentials: iks authenticates to etcd with a client certificate (--datastore-certfile, --datastore-keyfile), not a password; "+
				"remove them from the URL", u.Redacted())
			continue
		case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Hostname() == "" || u.Path != "" || u.RawQuery != "":
			bad("--datastore-endpoint %q is not an etcd client URL: use https://HOST:PORT (for example https://etcd1:2379), several separated by commas", ep)
			continue
		}
		if u.Port() == "" {
			bad("--datastore-endpoint %q has no port: etcd serves clients on 2379, so write %s://%s:2379", ep, u.Scheme, u.Hostname())
		}
		schemes[u.Scheme] = true
	}
	if len(schemes) > 1 {
		bad("--datastore-endpoint %q mixes https:// and http:// endpoints: use https:// for every member", strings.Join(eps, ","))
	}
	if schemes["http"] && len(schemes) == 1 {
		for _, fl := range []struct{ name, v string }{{"--datastore-cafile", f.CAFile}, {"--datastore-certfile", f.CertFile}, {"--datastore-keyfile", f.KeyFile}} {
			if fl.v != "" {
				bad("%s %q is given but --datastore-endpoint %q is plain http://: use https:// endpoints so the TLS files are used", fl.name, fl.v, strings.Join(eps, ","))
			}
		}
	}
	checkDatastoreTLS(bad, e)
	if f.ClusterReset {
		bad("--cluster-reset resets the embedded etcd's membership, and this server uses the external datastore %s: recover that etcd with its own tooling "+
			"(etcdutl snapshot restore, etcdctl member remove), then start iks server without --cluster-reset", strings.Join(eps, ","))
	}
	return e
}

// absPath makes a file name absolute ("" stays "").
func absPath(p string) string {
	if p == "" {
		return ""
	}
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// kineScheme reports a k3s kine datastore URL (SQL or NATS).
func kineScheme(ep string) bool {
	for _, p := range []string{"mysql://", "postgres://", "postgresql://", "sqlite://", "nats://"} {
		if strings.HasPrefix(ep, p) {
			return true
		}
	}
	return false
}

// checkDatastoreTLS checks that the TLS files exist, the CA parses and the
// certificate and key are a pair.
func checkDatastoreTLS(bad func(string, ...any), e *ExternalDatastore) {
	if (e.CertFile == "") != (e.KeyFile == "") {
		bad("--datastore-certfile %q and --datastore-keyfile %q go together: pass both (the client certificate etcd trusts and its key) or neither", e.CertFile, e.KeyFile)
	}
	read := func(flag, path string) []byte {
		if path == "" {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			bad("%s %q cannot be read: %v; pass a readable file (iks server runs as root)", flag, path, err)
			return nil
		}
		return data
	}
	if ca := read("--datastore-cafile", e.CAFile); ca != nil {
		if n := countCerts(ca); n == 0 {
			bad("--datastore-cafile %q holds no PEM certificate: pass the CA that signed the etcd servers' certificates (etcd's --trusted-ca-file)", e.CAFile)
		}
	}
	cert, key := read("--datastore-certfile", e.CertFile), read("--datastore-keyfile", e.KeyFile)
	if cert == nil || key == nil {
		return
	}
	pair, err := tls.X509KeyPair(cert, key)
	if err != nil {
		bad("--datastore-certfile %q and --datastore-keyfile %q are not a certificate and its key (%v): pass the key that belongs to that certificate", e.CertFile, e.KeyFile, err)
		return
	}
	if leaf, err := x509.ParseCertificate(pair.Certificate[0]); err == nil && time.Now().After(leaf.NotAfter) {
		bad("--datastore-certfile %q expired on %s: renew the etcd client certificate", e.CertFile, leaf.NotAfter.UTC().Format(time.RFC3339))
	}
}

func countCerts(data []byte) int {
	n := 0
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return n
		}
		if b.Type == "CERTIFICATE" {
			if _, err := x509.ParseCertificate(b.Bytes); err == nil {
				n++
			}
		}
	}
}

// checkDatastoreKind refuses switching a data dir between the embedded and
// an external datastore; recorded is cluster.json's record (nil: embedded).
func checkDatastoreKind(dataDir string, recorded *DatastoreInfo, now *ExternalDatastore) error {
	switch {
	case recorded.External() && now == nil:
		return fmt.Errorf("--data-dir %s keeps its cluster state in the external datastore %s (--datastore-endpoint), and this start has none: "+
			"pass --datastore-endpoint %s with its --datastore-cafile/--datastore-certfile/--datastore-keyfile again; iks does not move a cluster "+
			"between an external and the embedded etcd (use a new --data-dir for a new cluster)", dataDir, strings.Join(recorded.Endpoints, ","), strings.Join(recorded.Endpoints, ","))
	case !recorded.External() && now != nil:
		return fmt.Errorf("--data-dir %s keeps its cluster state in the embedded etcd (%s), and this start passes --datastore-endpoint %s: "+
			"drop --datastore-endpoint to run this cluster, or use a new --data-dir to start a server on the external datastore; iks does not move "+
			"a cluster between the embedded and an external etcd", dataDir, Paths{dataDir}.EtcdDir(), strings.Join(now.Endpoints, ","))
	}
	return nil
}

// checkDatastoreHA refuses --cluster-init with an external datastore:
// there is no embedded etcd to open to other servers.
func checkDatastoreHA(bad func(string, ...any), e *ExternalDatastore, clusterInit bool) {
	if e != nil && clusterInit {
		bad("--cluster-init opens the embedded etcd to other servers, and --datastore-endpoint %s replaces it: drop --cluster-init; "+
			"further servers share the datastore by starting with --server https://THIS:6443 --token T and the same --datastore-* flags", strings.Join(e.Endpoints, ","))
	}
}
