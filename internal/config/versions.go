package config

import (
	"encoding/json"
	"fmt"
	"os"

	etcdversion "go.etcd.io/etcd/api/v3/version"
	"k8s.io/apimachinery/pkg/util/version"

	"github.com/iks-dev/iks/internal/fsutil"
	iksversion "github.com/iks-dev/iks/internal/version"
)

// Upgrades in place: a server data dir records which iks, Kubernetes and
// etcd last ran it (cluster.json's lastRunBy). Starting another iks on it
// is an upgrade or a downgrade, checked before anything is written:
// Kubernetes supports neither a downgrade of the control plane (objects
// may be stored in versions the older apiserver cannot read) nor skipping
// a minor version on the way up, and etcd refuses data written by a newer
// minor version with an error that does not say what to do.

// RanBy names the versions that ran a data dir.
type RanBy struct {
	IKS        string `json:"iks"`
	Kubernetes string `json:"kubernetes"`
	Etcd       string `json:"etcd"`
}

// ThisRun is what this binary runs.
func ThisRun() RanBy {
	return RanBy{IKS: iksversion.Version, Kubernetes: iksversion.Kubernetes, Etcd: etcdversion.Version}
}

// checkSkew refuses running now on a data dir last run by was.
func checkSkew(dataDir string, was, now RanBy) []error {
	var errs []error
	restore := "or restore a snapshot taken before the upgrade (iks server --cluster-reset --cluster-reset-restore-path FILE) with this iks"
	if w, n, ok := minors(was.Kubernetes, now.Kubernetes); ok {
		switch {
		case n < w:
			errs = append(errs, fmt.Errorf("--data-dir %s was last run by iks %s with Kubernetes %s; this iks runs Kubernetes %s, and Kubernetes "+
				"does not support downgrading a control plane (objects may be stored in versions %s cannot read): install iks %s or newer again, %s",
				dataDir, was.IKS, was.Kubernetes, now.Kubernetes, now.Kubernetes, was.IKS, restore))
		case n > w+1:
			errs = append(errs, fmt.Errorf("--data-dir %s was last run by iks %s with Kubernetes %s; this iks runs Kubernetes %s, and Kubernetes "+
				"upgrades the control plane one minor version at a time: first run an iks with Kubernetes v1.%d on this data dir, then this one",
				dataDir, was.IKS, was.Kubernetes, now.Kubernetes, w+1))
		}
	}
	if w, n, ok := minors(was.Etcd, now.Etcd); ok && n < w {
		errs = append(errs, fmt.Errorf("--data-dir %s holds etcd data written by etcd %s (iks %s); this iks embeds etcd %s, which cannot read it: "+
			"install iks %s or newer again, %s", dataDir, was.Etcd, was.IKS, now.Etcd, was.IKS, restore))
	}
	return errs
}

// minors parses two versions' minor numbers; ok is false when either is
// missing or unparsable (an old data dir records none: nothing to check).
func minors(was, now string) (w, n uint, ok bool) {
	vw, err1 := version.ParseGeneric(was)
	vn, err2 := version.ParseGeneric(now)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return vw.Minor(), vn.Minor(), vw.Major() == vn.Major()
}

// RanBefore reports whether this very binary (same iks, Kubernetes and
// etcd versions) ran on the data dir last: a plain restart.
func (s *Server) RanBefore() bool {
	data, err := os.ReadFile(clusterInfoPath(s.DataDir))
	if err != nil {
		return false
	}
	var ci ClusterInfo
	if json.Unmarshal(data, &ci) != nil || ci.LastRunBy == nil {
		return false
	}
	return *ci.LastRunBy == ThisRun()
}

// RecordRun records this binary's versions in the data dir's cluster.json
// (after RecordClusterInfo) and returns the versions that ran it before
// (nil when none were recorded, or the same ones).
func (s *Server) RecordRun() (*RanBy, error) {
	p := clusterInfoPath(s.DataDir)
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	var ci ClusterInfo
	if err := json.Unmarshal(data, &ci); err != nil {
		return nil, fmt.Errorf("%s is corrupt (%v): restore it from a backup or use a new --data-dir", p, err)
	}
	now := ThisRun()
	prev := ci.LastRunBy
	if prev != nil && *prev == now {
		return nil, nil
	}
	ci.LastRunBy = &now
	out, _ := json.MarshalIndent(ci, "", "  ")
	if err := fsutil.WriteFileAtomic(p, append(out, '\n'), 0o600); err != nil {
		return nil, err
	}
	return prev, nil
}
