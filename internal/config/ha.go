package config

import (
	"net/url"
	"strings"

	"github.com/spf13/pflag"
)

// HAFlags are the raw values of the flags that make servers highly
// available on embedded etcd.
type HAFlags struct {
	Server      string
	ClusterInit bool
}

// HA is the validated high-availability configuration.
type HA struct {
	// JoinURL is the server to join (https://host:6443); "" for the first.
	JoinURL string
	// ClusterInit makes the first server's etcd reachable by the servers
	// that join it (peers and clients on the node IP).
	ClusterInit bool
	// SharedDatastore: the cluster state is in an external datastore
	// that further servers may share (--datastore-endpoint).
	SharedDatastore bool
}

// Enabled reports whether other servers may run beside this one: etcd
// serves other members, or the datastore is external.
func (h HA) Enabled() bool { return h.JoinURL != "" || h.ClusterInit || h.SharedDatastore }

// AddFlags registers the flags on fs.
func (f *HAFlags) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&f.Server, "server", "", "join the servers of this cluster (https://SERVER:6443; needs --token with the server token) as an etcd member, or, with --datastore-endpoint, sharing that datastore")
	fs.BoolVar(&f.ClusterInit, "cluster-init", false, "run etcd so that other servers can join this one (--server); implied by --server; not with --datastore-endpoint")
}

// validate checks the values; token is the --token value.
func (f *HAFlags) validate(bad func(string, ...any), token string) HA {
	h := HA{JoinURL: strings.TrimRight(f.Server, "/"), ClusterInit: f.ClusterInit}
	if f.Server == "" {
		return h
	}
	u, err := url.Parse(f.Server)
	if err != nil || u.Scheme != "https" || u.Hostname() == "" || u.Path != "" && u.Path != "/" {
		bad("--server %q is not a server URL: use https://SERVER:6443", f.Server)
	}
	if token == "" {
		bad("--server %s needs --token: pass the first server's token (cat <data-dir>/server/token on it)", f.Server)
	}
	return h
}
