package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/iks-dev/iks/internal/fsutil"
)

// ClusterInfoFormat is the data-dir format this iks writes and understands.
const ClusterInfoFormat = 1

// ClusterInfo is recorded in <data-dir>/server/cluster.json on first start;
// later starts must agree with it, so a data dir is never reused with
// settings that would corrupt it.
type ClusterInfo struct {
	Format        int    `json:"format"`
	ClusterCIDR   string `json:"clusterCIDR"`
	ServiceCIDR   string `json:"serviceCIDR"`
	ClusterDomain string `json:"clusterDomain"`
	// IPAMBlockSize is 0 in data dirs created before block IPAM; the
	// next start records the size it runs with.
	IPAMBlockSize int `json:"ipamBlockSize,omitempty"`
	// LastRunBy: the versions that last started a server on the data
	// dir (versions.go); absent in data dirs of older iks.
	LastRunBy *RanBy `json:"lastRunBy,omitempty"`
	// Datastore is where this server keeps the cluster state (absent in
	// data dirs of older iks: the embedded etcd).
	Datastore *DatastoreInfo `json:"datastore,omitempty"`
}

func clusterInfoPath(dataDir string) string {
	return filepath.Join(Paths{dataDir}.ServerDir(), "cluster.json")
}

func checkPorts(env Env, s *Server) []error {
	loop := netip.MustParseAddr("127.0.0.1")
	any4 := netip.IPv4Unspecified()
	type port struct {
		addr netip.Addr
		port int
		what string
	}
	ports := []port{{s.BindAddress, APIServerPort, "kube-apiserver"}, {loop, 10257, "kube-controller-manager"}, {loop, 10259, "kube-scheduler"}}
	if s.Datastore.External == nil {
		ports = append(ports, port{loop, 2379, "etcd client"}, port{loop, 2380, "etcd peer"})
	}
	if !s.DisableAgent {
		ports = append(ports, port{any4, KubeletPort, "kubelet"}, port{loop, 10248, "kubelet healthz"},
			port{loop, ProxyHealthzPort, "kube-proxy healthz"}, port{loop, ProxyMetricsPort, "kube-proxy metrics"})
	}
	var errs []error
	for _, p := range ports {
		if err := env.PortFree(p.addr, p.port); err != nil {
			errs = append(errs, fmt.Errorf("port %d on %s (%s) is in use: %v; stop whatever listens there (another iks or Kubernetes?) and retry", p.port, p.addr, p.what, err))
		}
	}
	return errs
}

// checkDataDir refuses a data dir written by an incompatible run, or a
// non-empty directory that is not an iks data dir.
func checkDataDir(env Env, s *Server) []error {
	data, err := env.ReadFile(clusterInfoPath(s.DataDir))
	if errors.Is(err, fs.ErrNotExist) {
		entries, rerr := os.ReadDir(s.DataDir)
		if rerr == nil && len(entries) > 0 && !onlyIKSEntries(entries) {
			return []error{fmt.Errorf("--data-dir %s is not empty and is not an iks data dir; choose an empty or new directory", s.DataDir)}
		}
		return nil
	}
	if err != nil {
		return []error{fmt.Errorf("cannot read %s: %w", clusterInfoPath(s.DataDir), err)}
	}
	var ci ClusterInfo
	if err := json.Unmarshal(data, &ci); err != nil {
		return []error{fmt.Errorf("%s is corrupt (%v): restore it from a backup or use a new --data-dir", clusterInfoPath(s.DataDir), err)}
	}
	if ci.Format > ClusterInfoFormat {
		return []error{fmt.Errorf("--data-dir %s was written by a newer iks (format %d, this iks reads %d): upgrade iks or use a new --data-dir", s.DataDir, ci.Format, ClusterInfoFormat)}
	}
	var errs []error
	mismatch := func(flag, was, now string) {
		if was != now {
			errs = append(errs, fmt.Errorf("--data-dir %s holds a cluster created with %s %s, not %s: pass %s %s, or use a new --data-dir to create another cluster", s.DataDir, flag, was, now, flag, was))
		}
	}
	mismatch("--cluster-cidr", ci.ClusterCIDR, s.ClusterCIDR.String())
	mismatch("--service-cidr", ci.ServiceCIDR, s.ServiceCIDR.String())
	mismatch("--cluster-domain", ci.ClusterDomain, s.ClusterDomain)
	if ci.IPAMBlockSize != 0 {
		mismatch("--ipam-block-size", fmt.Sprint(ci.IPAMBlockSize), fmt.Sprint(s.IPAMBlockSize))
	}
	if err := checkDatastoreKind(s.DataDir, ci.Datastore, s.Datastore.External); err != nil {
		errs = append(errs, err)
	}
	// Restoring a snapshot replaces what a newer version wrote.
	if ci.LastRunBy != nil && s.Datastore.RestorePath == "" {
		was, now := *ci.LastRunBy, ThisRun()
		if s.Datastore.External != nil {
			was.Etcd, now.Etcd = "", "" // the data dir holds no etcd data
		}
		errs = append(errs, checkSkew(s.DataDir, was, now)...)
	}
	return errs
}

func onlyIKSEntries(entries []os.DirEntry) bool {
	for _, e := range entries {
		switch e.Name() {
		case "server", "agent", "bin", "run", "lost+found":
		default:
			return false
		}
	}
	return true
}

// RecordClusterInfo writes cluster.json when it does not exist yet (it
// is the first thing written to a new data dir), and records in an
// existing one what it lacks: the block size (data dirs from before block
// IPAM) and the datastore (kind checked before, endpoints as of this start).
func (s *Server) RecordClusterInfo() error {
	p := clusterInfoPath(s.DataDir)
	ci := ClusterInfo{Format: ClusterInfoFormat, ClusterCIDR: s.ClusterCIDR.String(),
		ServiceCIDR: s.ServiceCIDR.String(), ClusterDomain: s.ClusterDomain}
	var old []byte
	if data, err := os.ReadFile(p); err == nil {
		if json.Unmarshal(data, &ci) != nil {
			return nil // refused by checkDataDir before
		}
		old = data
	}
	if ci.IPAMBlockSize == 0 {
		ci.IPAMBlockSize = s.IPAMBlockSize
	}
	ci.Datastore = s.Datastore.Info()
	data, _ := json.MarshalIndent(ci, "", "  ")
	data = append(data, '\n')
	if string(data) == string(old) {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(p), err)
	}
	return fsutil.WriteFileAtomic(p, data, 0o600)
}

// ReadClusterInfo reads the cluster.json of a server data dir.
func ReadClusterInfo(dataDir string) (ClusterInfo, error) {
	var ci ClusterInfo
	data, err := os.ReadFile(clusterInfoPath(dataDir))
	if err != nil {
		return ci, fmt.Errorf("read %s: %w (is %s a server data dir? pass --data-dir)", clusterInfoPath(dataDir), err, dataDir)
	}
	if err := json.Unmarshal(data, &ci); err != nil {
		return ci, fmt.Errorf("%s is corrupt: %w", clusterInfoPath(dataDir), err)
	}
	return ci, nil
}

// Paths returns the data-dir layout.
func (s *Server) Paths() Paths { return Paths{s.DataDir} }
