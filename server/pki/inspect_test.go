package pki

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestShortLeafValidityIsRenewedToOneYear(t *testing.T) {
	opts := testOptions(t)
	opts.LeafValidity = 30 * 24 * time.Hour
	p := mustEnsure(t, opts)
	certs, err := Inspect(p.Dir)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	services := map[string]bool{}
	for _, c := range certs {
		services[c.Service] = true
		if c.CA {
			if c.NotAfter.Before(now.Add(9 * 365 * 24 * time.Hour)) {
				t.Errorf("%s: CA lifetime shortened to %s", c.Path, c.NotAfter)
			}
			continue
		}
		if !NeedsRenewal(c.NotAfter, now) || c.NotAfter.After(now.Add(31*24*time.Hour)) {
			t.Errorf("%s: expires %s with a 30-day validity", c.Path, c.NotAfter)
		}
	}
	for _, s := range ServiceNames() {
		if !services[s] {
			t.Errorf("Inspect lists no certificate of service %s", s)
		}
	}
	opts.LeafValidity = 0
	mustEnsure(t, opts)
	certs, err = Inspect(p.Dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range certs {
		if NeedsRenewal(c.NotAfter, now) {
			t.Errorf("%s not renewed by a start within 90 days of expiry: %s", c.Path, c.NotAfter)
		}
	}
}

func TestRotateMovesOnlyTheServiceLeaves(t *testing.T) {
	opts := testOptions(t)
	p := mustEnsure(t, opts)
	before := snapshot(t, p.Dir)
	backup, err := Rotate(p.Dir, []string{"etcd", "kube-scheduler"}, time.Unix(5, 0))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"etcd/server.crt", "etcd/server.key", "etcd/peer.key", "scheduler.crt", "scheduler.key"} {
		if _, err := os.Stat(filepath.Join(p.Dir, f)); !os.IsNotExist(err) {
			t.Errorf("%s not moved: %v", f, err)
		}
		if _, err := os.Stat(filepath.Join(backup, f)); err != nil {
			t.Errorf("%s not in the backup: %v", f, err)
		}
	}
	for _, f := range []string{"ca.crt", "ca.key", "etcd/ca.key", "sa.key", "apiserver.crt", "admin.key"} {
		if _, err := os.Stat(filepath.Join(p.Dir, f)); err != nil {
			t.Errorf("%s touched: %v", f, err)
		}
	}
	mustEnsure(t, opts)
	after := snapshot(t, p.Dir)
	if string(after["ca.crt"].data) != string(before["ca.crt"].data) {
		t.Error("CA changed")
	}
	if string(after["etcd/server.key"].data) == string(before["etcd/server.key"].data) {
		t.Error("rotated etcd key reused")
	}
	if string(after["apiserver.key"].data) != string(before["apiserver.key"].data) {
		t.Error("apiserver key changed by an etcd/scheduler rotation")
	}
	if _, err := Rotate(p.Dir, []string{"nope"}, time.Now()); err == nil || !strings.Contains(err.Error(), "kube-apiserver") {
		t.Errorf("unknown service: %v", err)
	}
	if h, err := CAHashFile(p.CACert); err != nil || h != p.CAHash() {
		t.Errorf("CAHashFile %q %v, want %q", h, err, p.CAHash())
	}
}
