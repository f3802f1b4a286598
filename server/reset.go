package server

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"time"

	apiserverv1 "k8s.io/apiserver/pkg/apis/apiserver/v1"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/iks-dev/iks/internal/config"
	"github.com/iks-dev/iks/server/etcd"
	"github.com/iks-dev/iks/server/etcdsnap"
	"github.com/iks-dev/iks/server/pki"
	"github.com/iks-dev/iks/server/secretsenc"
)

// clusterReset runs `iks server --cluster-reset`: from a snapshot when
// RestorePath is set, else by restarting the member as a cluster of one.
// It checks everything before writing; the caller holds the data dir lock.
func clusterReset(ctx context.Context, cfg *config.Server, log *slog.Logger) error {
	p := cfg.Paths()
	caHash, err := pki.CAHashFile(filepath.Join(p.TLSDir(), "ca.crt"))
	if err != nil {
		return fmt.Errorf("--cluster-reset: %w", err)
	}
	if path := cfg.Datastore.RestorePath; path != "" {
		if err := RestoreSnapshot(path, p, caHash, log); err != nil {
			return err
		}
		// The data is now the snapshot's: the way back from an upgrade
		// (config.checkSkew) is this iks with a snapshot taken before it.
		if _, err := cfg.RecordRun(); err != nil {
			return err
		}
	} else if err := forceNewCluster(ctx, cfg, log); err != nil {
		return err
	}
	log.Info("etcd was reset to a cluster of this member only: restart iks server without --cluster-reset " +
		"(other servers must be removed and rejoined with empty data dirs)")
	return nil
}

// CheckRestorable refuses restoring a snapshot on a server whose cluster
// state is in an external datastore: iks restores its embedded etcd only.
func CheckRestorable(p config.Paths, path string) error {
	if ci, err := config.ReadClusterInfo(p.Root); err == nil && ci.Datastore.External() {
		return fmt.Errorf("this server keeps the cluster state in the external datastore %s, which iks does not restore: "+
			"stop every server, restore the snapshot into that etcd with its own tooling (etcdutl snapshot restore %s on each member, "+
			"then restart the members), and start the servers again", strings.Join(ci.Datastore.Endpoints, ","), path)
	}
	return nil
}

// RestoreSnapshot verifies the snapshot at path against the cluster with
// CA hash caHash, replaces the etcd data with it and makes sure the
// Secrets encryption config can read the Secrets it holds.
func RestoreSnapshot(path string, p config.Paths, caHash string, log *slog.Logger) error {
	if err := CheckRestorable(p, path); err != nil {
		return err
	}
	m, err := etcdsnap.Verify(path, caHash)
	if err != nil {
		return err
	}
	encPath := filepath.Join(p.CredDir(), secretsenc.FileName)
	enc, err := secretsenc.Load(encPath)
	if err != nil {
		return err
	}
	t0 := time.Now()
	old, err := etcdsnap.Restore(etcdsnap.RestoreOptions{Snapshot: path, EtcdDir: p.EtcdDir(),
		Name: etcd.MemberName, PeerURL: etcd.PeerURL, Now: t0})
	if err != nil {
		return err
	}
	log.Info("etcd restored from snapshot", "snapshot", path, "taken", m.Created.Format(time.RFC3339),
		"took", time.Since(t0).Round(time.Millisecond).String(), "previous-data", old)
	// Keys rotated away since the snapshot are added back for decryption.
	var missing []apiserverv1.Key
	for _, k := range m.EncryptionKeys {
		if !slices.ContainsFunc(enc.Keys, func(h apiserverv1.Key) bool { return h.Name == k.Name }) {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		enc.Keys = append(enc.Keys, missing...)
		if err := enc.Write(encPath); err != nil {
			return err
		}
		log.Info("added the snapshot's Secrets encryption keys back for decryption; run iks secrets-encrypt rotate-keys "+
			"once the server runs to re-encrypt with one key", "keys", len(missing))
	}
	return nil
}

// forceNewCluster starts the member once with --force-new-cluster.
func forceNewCluster(ctx context.Context, cfg *config.Server, log *slog.Logger) error {
	k, err := ensureCerts(cfg)
	if err != nil {
		return err
	}
	e := etcd.New(etcd.Config{DataDir: cfg.Paths().EtcdDir(), CACert: k.EtcdCACert, ServerCert: k.EtcdServerCert,
		ServerKey: k.EtcdServerKey, PeerCert: k.EtcdPeerCert, PeerKey: k.EtcdPeerKey, Debug: cfg.Debug,
		ForceNewCluster: true}, log)
	if err := e.Init(ctx); err != nil {
		return err
	}
	if err := e.Start(ctx); err != nil {
		return err
	}
	defer e.Stop(context.Background())
	return e.Ready(ctx)
}

// snapshotScheduler returns the scheduled-snapshot component.
func snapshotScheduler(cfg *config.Server, caHash string, log *slog.Logger) (*etcdsnap.Scheduler, error) {
	sched, err := etcdsnap.ParseSchedule(cfg.Datastore.SnapshotSchedule)
	if err != nil {
		return nil, err
	}
	if e := cfg.Datastore.External; e != nil && sched != nil {
		// As k3s: the user's etcd is backed up with its own tooling
		// (each server sharing it would otherwise snapshot it).
		log.Info("scheduled etcd snapshots are off with an external datastore: back it up with etcdctl snapshot save, "+
			"or take one with iks etcd-snapshot save", "datastore", strings.Join(e.Endpoints, ","))
		sched = nil
	}
	p := cfg.Paths()
	return etcdsnap.NewScheduler(etcdsnap.SchedulerConfig{
		Schedule: sched, Retention: cfg.Datastore.SnapshotRetention, Dir: p.SnapshotDir(), Node: cfg.NodeName, CAHash: caHash,
		Keys: func() ([]apiserverv1.Key, error) {
			c, err := secretsenc.Load(filepath.Join(p.CredDir(), secretsenc.FileName))
			if err != nil {
				return nil, err
			}
			return c.Keys, nil
		},
		Client: func() (*clientv3.Client, error) { return etcd.NewClient(etcd.LocalClientFiles(p.TLSDir())) },
	}, log), nil
}
