package config

import (
	"os"

	"github.com/robfig/cron/v3"
	"github.com/spf13/pflag"
)

// Snapshot defaults (as k3s): every 12 hours, keep 5.
const (
	DefaultSnapshotCron      = "0 */12 * * *"
	DefaultSnapshotRetention = 5
)

// DatastoreFlags are the raw values of the etcd flags of `iks server`.
type DatastoreFlags struct {
	ClusterReset            bool
	ClusterResetRestorePath string
	SnapshotCron            string
	SnapshotRetention       int
	// Endpoints and the files are the external etcd (--datastore-*).
	Endpoints                 []string
	CAFile, CertFile, KeyFile string
}

// Datastore is the validated etcd configuration.
type Datastore struct {
	// ClusterReset makes the server reset the etcd membership to this
	// member (from RestorePath's snapshot when set) and exit.
	ClusterReset bool
	RestorePath  string
	// SnapshotSchedule is the scheduled snapshots' cron ("" disables).
	SnapshotSchedule  string
	SnapshotRetention int
	// External is the user's etcd (--datastore-endpoint); nil runs the
	// embedded member.
	External *ExternalDatastore
}

// AddFlags registers the flags on fs.
func (f *DatastoreFlags) AddFlags(fs *pflag.FlagSet) {
	fs.BoolVar(&f.ClusterReset, "cluster-reset", false, "make this server's etcd member a cluster of one (recovery from quorum loss), then exit; "+
		"with --cluster-reset-restore-path, from that snapshot")
	fs.StringVar(&f.ClusterResetRestorePath, "cluster-reset-restore-path", "", "snapshot file to restore with --cluster-reset (see iks etcd-snapshot ls)")
	fs.StringVar(&f.SnapshotCron, "etcd-snapshot-schedule-cron", DefaultSnapshotCron, "when to take etcd snapshots, a five-field cron expression (\"\" disables)")
	fs.IntVar(&f.SnapshotRetention, "etcd-snapshot-retention", DefaultSnapshotRetention, "number of scheduled snapshots to keep")
	fs.StringSliceVar(&f.Endpoints, "datastore-endpoint", nil, "keep the cluster state in this external etcd instead of the embedded one: "+
		"client URLs https://ETCD:2379, comma-separated or repeated (every server of the cluster passes the same)")
	fs.StringVar(&f.CAFile, "datastore-cafile", "", "CA that verifies the external etcd's servers (default: the host's CAs)")
	fs.StringVar(&f.CertFile, "datastore-certfile", "", "client certificate for the external etcd")
	fs.StringVar(&f.KeyFile, "datastore-keyfile", "", "key of --datastore-certfile")
}

// validate checks the values.
func (f *DatastoreFlags) validate(bad func(string, ...any)) Datastore {
	d := Datastore{ClusterReset: f.ClusterReset, RestorePath: f.ClusterResetRestorePath,
		SnapshotSchedule: f.SnapshotCron, SnapshotRetention: f.SnapshotRetention}
	if f.ClusterResetRestorePath != "" {
		if !f.ClusterReset {
			bad("--cluster-reset-restore-path %q needs --cluster-reset too: iks server --cluster-reset --cluster-reset-restore-path FILE", f.ClusterResetRestorePath)
		}
		if st, err := os.Stat(f.ClusterResetRestorePath); err != nil {
			bad("--cluster-reset-restore-path %q: %v; pass a snapshot file (iks etcd-snapshot ls lists them)", f.ClusterResetRestorePath, err)
		} else if st.IsDir() {
			bad("--cluster-reset-restore-path %q is a directory; pass a snapshot file (iks etcd-snapshot ls lists them)", f.ClusterResetRestorePath)
		}
	}
	if f.SnapshotCron != "" {
		if _, err := cron.ParseStandard(f.SnapshotCron); err != nil {
			bad("--etcd-snapshot-schedule-cron %q is not a cron expression (%v): use five fields, e.g. %q, or \"\" to disable",
				f.SnapshotCron, err, DefaultSnapshotCron)
		}
	}
	d.External = f.validateExternal(bad)
	if f.SnapshotRetention < 1 {
		bad("--etcd-snapshot-retention %d must be at least 1 (default %d)", f.SnapshotRetention, DefaultSnapshotRetention)
	}
	return d
}
