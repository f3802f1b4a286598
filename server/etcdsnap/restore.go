package etcdsnap

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"go.etcd.io/etcd/etcdutl/v3/snapshot"
	"go.uber.org/zap"
)

// revisionBump is added to the restored revision, marked compacted, so
// watchers (kubelets, informers) relist instead of trusting revisions
// that went back in time.
const revisionBump = 1_000_000_000

// Verify checks the snapshot at path against its metadata and the cluster
// (caHash is the running data dir's CA hash), reading but writing nothing.
func Verify(path, caHash string) (*Meta, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", path, err)
	}
	if st.IsDir() {
		return nil, fmt.Errorf("snapshot %s is a directory: pass a snapshot file from `iks etcd-snapshot ls`", path)
	}
	m, err := ReadMeta(path)
	if err != nil {
		return nil, err
	}
	if m.ClusterCAHash != caHash {
		return nil, fmt.Errorf("snapshot %s belongs to another cluster (its CA hash %.12s… is not this data dir's %.12s…): "+
			"restore it with the data dir (server/tls, server/cred) of the cluster that took it", path, m.ClusterCAHash, caHash)
	}
	sum, size, err := fileSHA256(path)
	if err != nil {
		return nil, err
	}
	if size != m.Size || sum != m.SHA256 {
		return nil, fmt.Errorf("snapshot %s is corrupt: %d bytes with SHA-256 %.12s…, its metadata says %d bytes with %.12s…; "+
			"use another snapshot (`iks etcd-snapshot ls`)", path, size, sum, m.Size, m.SHA256)
	}
	return m, nil
}

// RestoreOptions configures Restore.
type RestoreOptions struct {
	Snapshot string // verified snapshot file
	EtcdDir  string // the member's data dir, replaced
	Name     string // member name
	PeerURL  string
	Now      time.Time
}

// Restore builds a new single-member data dir from the snapshot beside
// EtcdDir, checking etcd's own checksum, then swaps it in; the old data
// dir is kept as <EtcdDir>-old-<unix seconds>. It returns that path ("" if
// there was none). The caller holds the data dir lock.
func Restore(o RestoreOptions) (string, error) {
	tmp := fmt.Sprintf("%s-restore-%d", o.EtcdDir, o.Now.UnixNano())
	defer os.RemoveAll(tmp)
	err := snapshot.NewV3(zap.NewNop()).Restore(snapshot.RestoreConfig{
		SnapshotPath: o.Snapshot, Name: o.Name, OutputDataDir: tmp,
		PeerURLs: []string{o.PeerURL}, InitialCluster: o.Name + "=" + o.PeerURL, InitialClusterToken: "iks",
		RevisionBump: revisionBump, MarkCompacted: true,
	})
	if err != nil {
		return "", fmt.Errorf("restore %s: %w; the current etcd data in %s is unchanged", o.Snapshot, err, o.EtcdDir)
	}
	if err := os.Chmod(tmp, 0o700); err != nil {
		return "", err
	}
	old := ""
	if _, err := os.Stat(o.EtcdDir); err == nil {
		old = fmt.Sprintf("%s-old-%d", o.EtcdDir, o.Now.Unix())
		if err := os.Rename(o.EtcdDir, old); err != nil {
			return "", fmt.Errorf("move the current etcd data aside: %w", err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	if err := os.Rename(tmp, o.EtcdDir); err != nil {
		if old != "" {
			_ = os.Rename(old, o.EtcdDir)
		}
		return "", fmt.Errorf("move the restored etcd data into place: %w", err)
	}
	return old, nil
}
