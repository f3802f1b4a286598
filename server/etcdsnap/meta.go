// Package etcdsnap saves, lists, prunes and restores snapshots of the
// embedded etcd. A snapshot is etcd's own snapshot file (usable by
// etcdutl) beside a metadata file, <name>.meta.json (0600), that records
// its SHA-256, size, the cluster it belongs to (the cluster CA's hash) and
// the Secrets encryption keys it was taken with, so a restore can refuse a
// damaged file or one of another cluster before writing anything, and a
// restored cluster can still read its Secrets after keys were rotated.
package etcdsnap

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	apiserverv1 "k8s.io/apiserver/pkg/apis/apiserver/v1"

	"github.com/iks-dev/iks/internal/fsutil"
)

// MetaSuffix ends a metadata file's name.
const MetaSuffix = ".meta.json"

// partSuffix ends a snapshot being written.
const partSuffix = ".part"

// Name prefixes.
const (
	ScheduledPrefix = "etcd-snapshot" // taken by the schedule; pruned by retention
	OnDemandPrefix  = "on-demand"     // taken by `iks etcd-snapshot save`
)

// Meta describes one snapshot.
type Meta struct {
	Name      string    `json:"name"`
	Node      string    `json:"node"`
	Created   time.Time `json:"created"`
	Size      int64     `json:"size"`
	SHA256    string    `json:"sha256"`
	Scheduled bool      `json:"scheduled"`
	// ClusterCAHash is the SHA-256 of the cluster CA certificate's DER.
	ClusterCAHash string `json:"clusterCAHash"`
	EtcdVersion   string `json:"etcdVersion,omitempty"`
	// EncryptionKeys are the Secrets keys configured when it was taken.
	EncryptionKeys []apiserverv1.Key `json:"encryptionKeys,omitempty"`
}

// Entry is a snapshot file found in a directory.
type Entry struct {
	Path string
	Size int64
	Meta *Meta // nil when the metadata is missing or unreadable
	Err  error // why Meta is nil
}

// MetaPath is the metadata file of the snapshot at path.
func MetaPath(path string) string { return path + MetaSuffix }

// ReadMeta reads the metadata of the snapshot at path.
func ReadMeta(path string) (*Meta, error) {
	data, err := os.ReadFile(MetaPath(path))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("metadata file %s is missing: iks restores only snapshots it took, with their metadata "+
			"(copy the .meta.json file along with the snapshot)", MetaPath(path))
	}
	if err != nil {
		return nil, fmt.Errorf("read snapshot metadata: %w", err)
	}
	var m Meta
	if err := json.Unmarshal(data, &m); err != nil || m.SHA256 == "" || m.ClusterCAHash == "" {
		return nil, fmt.Errorf("metadata file %s is damaged (%v): take another snapshot", MetaPath(path), err)
	}
	return &m, nil
}

func writeMeta(path string, m *Meta) error {
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("encode snapshot metadata: %w", err)
	}
	return fsutil.WriteFileAtomic(MetaPath(path), append(data, '\n'), 0o600)
}

// List returns the snapshots in dir, oldest first.
func List(dir string) ([]Entry, error) {
	des, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	var out []Entry
	for _, de := range des {
		n := de.Name()
		if de.IsDir() || strings.HasSuffix(n, MetaSuffix) || strings.HasSuffix(n, partSuffix) || strings.HasPrefix(n, ".") {
			continue
		}
		info, err := de.Info()
		if err != nil {
			continue
		}
		e := Entry{Path: filepath.Join(dir, n), Size: info.Size()}
		e.Meta, e.Err = ReadMeta(e.Path)
		out = append(out, e)
	}
	sort.SliceStable(out, func(i, j int) bool { return created(out[i]).Before(created(out[j])) })
	return out, nil
}

func created(e Entry) time.Time {
	if e.Meta != nil {
		return e.Meta.Created
	}
	return time.Time{}
}

// Delete removes the snapshot name (a file name in dir) and its metadata.
func Delete(dir, name string) error {
	if name == "" || name != filepath.Base(name) || strings.HasSuffix(name, MetaSuffix) {
		return fmt.Errorf("snapshot name %q is not a snapshot file name: use a name from `iks etcd-snapshot ls`", name)
	}
	p := filepath.Join(dir, name)
	if _, err := os.Stat(p); err != nil {
		return fmt.Errorf("snapshot %s: %w; `iks etcd-snapshot ls` lists the snapshots", p, err)
	}
	if err := os.Remove(MetaPath(p)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete %s: %w", MetaPath(p), err)
	}
	if err := os.Remove(p); err != nil {
		return fmt.Errorf("delete %s: %w", p, err)
	}
	return nil
}

// Prune deletes the oldest scheduled snapshots beyond retention and
// returns the names deleted; on-demand snapshots are the user's to delete.
func Prune(dir string, retention int) ([]string, error) {
	es, err := List(dir)
	if err != nil {
		return nil, err
	}
	var sched []Entry
	for _, e := range es {
		if e.Meta != nil && e.Meta.Scheduled {
			sched = append(sched, e)
		}
	}
	var gone []string
	for len(sched) > retention {
		name := filepath.Base(sched[0].Path)
		if err := Delete(dir, name); err != nil {
			return gone, err
		}
		gone = append(gone, name)
		sched = sched[1:]
	}
	return gone, nil
}

// fileSHA256 hashes the file at path.
func fileSHA256(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("read %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}
