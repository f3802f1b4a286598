package server

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/iks-dev/iks/internal/component"
	"github.com/iks-dev/iks/internal/config"
	"github.com/iks-dev/iks/server/etcd"
	"github.com/iks-dev/iks/server/ha"
	"github.com/iks-dev/iks/server/pki"
	"github.com/iks-dev/iks/server/rbac"
	"github.com/iks-dev/iks/server/secretsenc"
)

// Where the cluster state lives: the embedded etcd member, or the user's
// etcd (--datastore-endpoint), which the server checks before writing
// anything and then hands to kube-apiserver. Kubernetes keeps its objects
// under registryPrefix; nothing else of that etcd is touched.

// registryPrefix is kube-apiserver's default --etcd-prefix.
const registryPrefix = "/registry/"

// bootstrapKey is where etcd holds the HA bootstrap Secret a first
// server publishes (server/ha): its presence marks an iks cluster.
var bootstrapKey = registryPrefix + "secrets/kube-system/" + rbac.ServerBootstrapSecret

// apiserverEtcd is the etcd kube-apiserver uses.
type apiserverEtcd struct{ URL, CA, Cert, Key string }

// etcdForAPIServer returns the embedded member's URL and the PKI's client
// files, or the external datastore's endpoints and files.
func etcdForAPIServer(cfg *config.Server, k *pki.PKI) apiserverEtcd {
	if e := cfg.Datastore.External; e != nil {
		return apiserverEtcd{URL: strings.Join(e.Endpoints, ","), CA: e.CAFile, Cert: e.CertFile, Key: e.KeyFile}
	}
	return apiserverEtcd{URL: etcd.ClientURL, CA: k.EtcdCACert, Cert: k.APIServerEtcdClientCert, Key: k.APIServerEtcdClientKey}
}

// datastoreComponent is the embedded etcd member, or, with an external
// datastore, a component that waits for that etcd to answer.
func datastoreComponent(cfg *config.Server, k *pki.PKI, etcdHA *etcd.HA, log *slog.Logger) component.Component {
	if e := cfg.Datastore.External; e != nil {
		return &externalDatastore{ds: e, log: log.With("component", "datastore")}
	}
	p := cfg.Paths()
	return etcd.New(etcd.Config{DataDir: p.EtcdDir(), CACert: k.EtcdCACert, ServerCert: k.EtcdServerCert,
		ServerKey: k.EtcdServerKey, PeerCert: k.EtcdPeerCert, PeerKey: k.EtcdPeerKey, Debug: cfg.Debug, HA: etcdHA, ArgsDir: p.ArgsDir()}, log)
}

// checkExternalDatastore reaches the external datastore before anything
// is written: every endpoint is tried (one answering is enough, the
// others are warned about), the membership listed, and, on a new data
// dir, the datastore must hold no other cluster (a first server) or the
// cluster it joins (--server).
func checkExternalDatastore(ctx context.Context, cfg *config.Server, log *slog.Logger) error {
	e := cfg.Datastore.External
	if e == nil {
		return nil
	}
	log = log.With("component", "datastore")
	if e.Insecure() {
		log.Warn("the external datastore is plain http: the cluster state, Secrets' ciphertext included, crosses the network unauthenticated "+
			"and anyone on the path can read and change it; use https:// endpoints with --datastore-cafile/--datastore-certfile/--datastore-keyfile",
			"endpoints", strings.Join(e.Endpoints, ","))
	}
	files := etcd.ClientFiles{CA: e.CAFile, Cert: e.CertFile, Key: e.KeyFile}
	tlsCfg, err := etcd.ExternalTLS(e.Endpoints, files)
	if err != nil {
		return err
	}
	all, err := etcd.NewExternalClient(e.Endpoints, files)
	if err != nil {
		return err
	}
	defer all.Close()
	var answered []string
	var failed []string
	for _, ep := range e.Endpoints {
		v, err := probeEtcd(ctx, ep, tlsCfg)
		if err != nil {
			// An etcd serving HTTP on other URLs (--listen-client-http-urls)
			// answers gRPC only: its status is enough.
			sctx, scancel := context.WithTimeout(ctx, 5*time.Second)
			st, serr := all.Status(sctx, ep)
			scancel()
			if serr != nil {
				failed = append(failed, err.Error())
				continue
			}
			v = st.Version
		}
		answered = append(answered, ep)
		log.Info("external datastore answers", "endpoint", ep, "version", v)
	}
	if len(answered) == 0 {
		return fmt.Errorf("no endpoint of the external datastore answers:\n  %s", strings.Join(failed, "\n  "))
	}
	for _, msg := range failed {
		log.Warn("an endpoint of the external datastore does not answer; the server uses the others", "err", msg)
	}
	cli, err := etcd.NewExternalClient(answered, files)
	if err != nil {
		return err
	}
	defer cli.Close()
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	members, err := cli.MemberList(cctx)
	if err != nil {
		return fmt.Errorf("list the members of the external datastore %s: %w; check that its cluster has a quorum (etcdctl endpoint status)", strings.Join(answered, ","), err)
	}
	log.Info("external datastore reached", "members", len(members.Members), "prefix", registryPrefix)
	if _, err := os.Stat(filepath.Join(cfg.Paths().TLSDir(), "ca.crt")); err == nil {
		return nil // not a new data dir
	}
	return checkDatastoreOwner(cctx, cli, cfg)
}

// checkDatastoreOwner refuses a new first server on a datastore that holds
// a cluster already, and a joining server on one that does not hold the
// cluster it joins.
func checkDatastoreOwner(ctx context.Context, cli *clientv3.Client, cfg *config.Server) error {
	eps := strings.Join(cfg.Datastore.External.Endpoints, ",")
	if cfg.HA.JoinURL != "" {
		r, err := cli.Get(ctx, bootstrapKey, clientv3.WithCountOnly())
		if err != nil {
			return fmt.Errorf("read the external datastore %s: %w", eps, err)
		}
		if r.Count == 0 {
			return fmt.Errorf("the external datastore %s holds no iks cluster (no %s): every server of a cluster must use the same datastore as the server it joins (%s); "+
				"pass that server's --datastore-endpoint", eps, bootstrapKey, cfg.HA.JoinURL)
		}
		return nil
	}
	r, err := cli.Get(ctx, registryPrefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return fmt.Errorf("read the external datastore %s: %w", eps, err)
	}
	if r.Count > 0 {
		return fmt.Errorf("the external datastore %s already holds a Kubernetes cluster (%d keys under %s) and this data dir is new: to add this server to that cluster, "+
			"start it with --server https://SERVER:6443 --token TOKEN (the server token of a server of that cluster); to create a new cluster, use an empty etcd", eps, r.Count, registryPrefix)
	}
	return nil
}

// externalDatastore stands in the component order where the embedded
// member would: it starts nothing and is ready when the etcd answers.
type externalDatastore struct {
	ds  *config.ExternalDatastore
	log *slog.Logger
}

// Name implements component.Component.
func (x *externalDatastore) Name() string { return "datastore" }

// Init implements component.Component.
func (x *externalDatastore) Init(context.Context) error { return nil }

// Start implements component.Component.
func (x *externalDatastore) Start(context.Context) error { return nil }

// Stop implements component.Component.
func (x *externalDatastore) Stop(context.Context) error { return nil }

// Ready waits until some endpoint answers a status request.
func (x *externalDatastore) Ready(ctx context.Context) error {
	cli, err := etcd.NewExternalClient(x.ds.Endpoints, etcd.ClientFiles{CA: x.ds.CAFile, Cert: x.ds.CertFile, Key: x.ds.KeyFile})
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for {
		var last error
		for _, ep := range x.ds.Endpoints {
			sctx, scancel := context.WithTimeout(ctx, 5*time.Second)
			_, err := cli.Status(sctx, ep)
			scancel()
			if err == nil {
				return nil
			}
			last = fmt.Errorf("%s: %w", ep, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the external datastore does not answer (last: %v): %w", last, ctx.Err())
		case <-time.After(time.Second):
		}
	}
}

// joinExternal checks the external datastore and, with --server, fetches
// the cluster's shared files; the server joins no etcd membership.
func joinExternal(ctx context.Context, cfg *config.Server, log *slog.Logger) error {
	if err := checkExternalDatastore(ctx, cfg, log); err != nil {
		return err
	}
	if cfg.HA.JoinURL == "" {
		return nil
	}
	if err := ha.JoinVerified(ctx, cfg, log, func(ctx context.Context, c ha.JoinCheck) error { return sameDatastore(ctx, cfg, c) }); err != nil {
		return err
	}
	log.Info("HA server on the external datastore: no etcd member of its own", "join", cfg.HA.JoinURL,
		"datastore", strings.Join(cfg.Datastore.External.Endpoints, ","))
	return nil
}

// sameDatastore checks that the external datastore holds the bootstrap
// Secret the server being joined serves: the stored object, opened with
// the cluster's encryption keys, must carry the same UID. Another
// cluster's datastore fails this even if it holds an iks cluster.
func sameDatastore(ctx context.Context, cfg *config.Server, c ha.JoinCheck) error {
	e := cfg.Datastore.External
	eps := strings.Join(e.Endpoints, ",")
	enc, err := secretsenc.Parse(c.EncryptionConfig, "of the cluster at "+cfg.HA.JoinURL)
	if err != nil {
		return err
	}
	cli, err := etcd.NewExternalClient(e.Endpoints, etcd.ClientFiles{CA: e.CAFile, Cert: e.CertFile, Key: e.KeyFile})
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	r, err := cli.Get(ctx, bootstrapKey)
	if err != nil {
		return fmt.Errorf("read the external datastore %s: %w", eps, err)
	}
	why := "it holds no " + bootstrapKey
	if len(r.Kvs) > 0 {
		plain, err := enc.Decrypt(ctx, r.Kvs[0].Value)
		switch {
		case err != nil:
			why = fmt.Sprintf("its %s cannot be opened with the cluster's Secrets encryption keys: %v", bootstrapKey, err)
		case !bytes.Contains(plain, []byte(c.UID)):
			why = fmt.Sprintf("its %s is another object than the cluster's (uid %s)", bootstrapKey, c.UID)
		default:
			return nil
		}
	}
	return fmt.Errorf("the external datastore %s is not the datastore of the cluster at %s: %s; every server of a cluster must use the same etcd: "+
		"pass that cluster's --datastore-endpoint", eps, cfg.HA.JoinURL, why)
}
