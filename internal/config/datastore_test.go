package config

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

func TestDatastoreFlags(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		f    DatastoreFlags
		want string // "" accepts
	}{
		{DatastoreFlags{SnapshotCron: DefaultSnapshotCron, SnapshotRetention: 5}, ""},
		{DatastoreFlags{SnapshotCron: "", SnapshotRetention: 5}, ""},
		{DatastoreFlags{ClusterReset: true, SnapshotRetention: 1}, ""},
		{DatastoreFlags{ClusterReset: true, ClusterResetRestorePath: dir + "/none", SnapshotRetention: 1}, "no such file"},
		{DatastoreFlags{ClusterReset: true, ClusterResetRestorePath: dir, SnapshotRetention: 1}, "is a directory"},
		{DatastoreFlags{ClusterResetRestorePath: filepath.Join(dir), SnapshotRetention: 1}, "needs --cluster-reset"},
		{DatastoreFlags{SnapshotCron: "0 */12 * *", SnapshotRetention: 5}, "five fields"},
		{DatastoreFlags{SnapshotCron: DefaultSnapshotCron, SnapshotRetention: 0}, "at least 1"},
	} {
		var errs []string
		c.f.validate(func(f string, a ...any) { errs = append(errs, fmt.Sprintf(f, a...)) })
		got := strings.Join(errs, "; ")
		if c.want == "" && got != "" || c.want != "" && !strings.Contains(got, c.want) {
			t.Errorf("%+v: got %q, want %q", c.f, got, c.want)
		}
	}
}
