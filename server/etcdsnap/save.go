package etcdsnap

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/apimachinery/pkg/util/validation"
	apiserverv1 "k8s.io/apiserver/pkg/apis/apiserver/v1"

	"github.com/iks-dev/iks/internal/fsutil"
)

// SaveOptions configures Save.
type SaveOptions struct {
	Dir       string
	Prefix    string // ScheduledPrefix, OnDemandPrefix or the user's --name
	Node      string
	Scheduled bool
	CAHash    string
	EncKeys   []apiserverv1.Key
	Client    *clientv3.Client
	Now       time.Time
}

// Save streams a snapshot of the member behind o.Client into
// <Dir>/<Prefix>-<Node>-<unix seconds>: written to a temporary file,
// synced, its metadata written, then renamed into place.
func Save(ctx context.Context, o SaveOptions) (*Meta, error) {
	if errs := validation.IsDNS1123Subdomain(o.Prefix); len(errs) > 0 {
		return nil, fmt.Errorf("snapshot name %q is invalid (%v): use lowercase letters, digits and '-'", o.Prefix, errs)
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("create snapshot dir: %w", err)
	}
	name := fmt.Sprintf("%s-%s-%d", o.Prefix, o.Node, o.Now.Unix())
	final := filepath.Join(o.Dir, name)
	if _, err := os.Stat(final); err == nil {
		return nil, fmt.Errorf("snapshot %s already exists: wait a second or pass another --name", final)
	}
	part := final + partSuffix
	defer os.Remove(part)
	f, err := os.OpenFile(part, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", part, err)
	}
	defer f.Close()
	resp, err := o.Client.SnapshotWithVersion(ctx)
	if err != nil {
		return nil, fmt.Errorf("request snapshot from etcd: %w", err)
	}
	defer resp.Snapshot.Close()
	h := sha256.New()
	size, err := io.Copy(io.MultiWriter(f, h), resp.Snapshot)
	if err != nil {
		return nil, fmt.Errorf("write snapshot %s: %w", part, err)
	}
	// etcd ends a snapshot with the SHA-256 of its database pages.
	if size%512 != sha256.Size {
		return nil, fmt.Errorf("snapshot from etcd is truncated (%d bytes, no trailing checksum)", size)
	}
	if err := f.Sync(); err != nil {
		return nil, fmt.Errorf("sync %s: %w", part, err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("close %s: %w", part, err)
	}
	m := &Meta{Name: name, Node: o.Node, Created: o.Now.UTC(), Size: size, SHA256: hex.EncodeToString(h.Sum(nil)),
		Scheduled: o.Scheduled, ClusterCAHash: o.CAHash, EtcdVersion: resp.Version, EncryptionKeys: o.EncKeys}
	if err := writeMeta(final, m); err != nil {
		return nil, err
	}
	if err := os.Rename(part, final); err != nil {
		os.Remove(MetaPath(final))
		return nil, fmt.Errorf("rename %s: %w", part, err)
	}
	if err := fsutil.SyncDir(o.Dir); err != nil {
		return nil, err
	}
	return m, nil
}
