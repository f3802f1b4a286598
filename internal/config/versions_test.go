package config

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckSkew(t *testing.T) {
	now := RanBy{IKS: "v2", Kubernetes: "v1.36.3", Etcd: "3.6.8"}
	for _, c := range []struct {
		name string
		was  RanBy
		want []string // substrings of the refusal; nil: accepted
	}{
		{"same", now, nil},
		{"older patch", RanBy{IKS: "v1", Kubernetes: "v1.36.1", Etcd: "3.6.5"}, nil},
		{"newer patch", RanBy{IKS: "v3", Kubernetes: "v1.36.9", Etcd: "3.6.9"}, nil},
		{"one minor up", RanBy{IKS: "v1", Kubernetes: "v1.35.4", Etcd: "3.5.21"}, nil},
		{"unparsable (dev builds)", RanBy{IKS: "41586a5", Kubernetes: "", Etcd: "?"}, nil},
		{"kubernetes downgrade", RanBy{IKS: "v3", Kubernetes: "v1.37.0", Etcd: "3.6.8"},
			[]string{"Kubernetes v1.37.0", "does not support downgrading", "install iks v3 or newer", "--cluster-reset-restore-path"}},
		{"minor skipped", RanBy{IKS: "v0", Kubernetes: "v1.34.2", Etcd: "3.6.8"},
			[]string{"one minor version at a time", "Kubernetes v1.35"}},
		{"etcd downgrade", RanBy{IKS: "v3", Kubernetes: "v1.36.3", Etcd: "3.7.0"},
			[]string{"etcd 3.7.0", "cannot read it", "install iks v3 or newer"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			errs := checkSkew("/var/lib/iks", c.was, now)
			if c.want == nil {
				if len(errs) > 0 {
					t.Fatalf("refused: %v", errs)
				}
				return
			}
			if len(errs) == 0 {
				t.Fatal("accepted")
			}
			msg := errs[0].Error()
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("refusal lacks %q: %s", w, msg)
				}
			}
		})
	}
}

// A data dir last run by a newer Kubernetes is refused by Validate with
// nothing written; this version's run is recorded, and an earlier one is
// returned by RecordRun.
func TestDowngradeRefusedUpgradeRecorded(t *testing.T) {
	f := flags(t)
	s, err := f.Validate(goodEnv())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RecordClusterInfo(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(s.DataDir, "server", "cluster.json")
	setRun := func(r RanBy) []byte {
		data, _ := os.ReadFile(p)
		var ci ClusterInfo
		if err := json.Unmarshal(data, &ci); err != nil {
			t.Fatal(err)
		}
		ci.LastRunBy = &r
		out, _ := json.Marshal(ci)
		if err := os.WriteFile(p, out, 0o600); err != nil {
			t.Fatal(err)
		}
		return out
	}
	newer := setRun(RanBy{IKS: "v9", Kubernetes: "v1.40.0", Etcd: ThisRun().Etcd})
	if _, err := f.Validate(goodEnv()); err == nil || !strings.Contains(err.Error(), "does not support downgrading") {
		t.Fatalf("downgrade not refused: %v", err)
	}
	if after, _ := os.ReadFile(p); string(after) != string(newer) {
		t.Fatal("a refused start changed cluster.json")
	}
	// The way back: restoring a snapshot with this iks is allowed.
	if _, err := flags(t, "--data-dir", s.DataDir, "--cluster-reset", "--cluster-reset-restore-path", "/x/snap").Validate(goodEnv()); err != nil &&
		strings.Contains(err.Error(), "downgrading") {
		t.Fatalf("restore refused for the version: %v", err)
	}

	older := RanBy{IKS: "v1", Kubernetes: "v1.35.2", Etcd: "3.5.21"}
	setRun(older)
	if _, err := f.Validate(goodEnv()); err != nil {
		t.Fatalf("upgrade from one minor below refused: %v", err)
	}
	if s.RanBefore() {
		t.Error("RanBefore after another version's run: want false (an upgrade, not a plain restart)")
	}
	prev, err := s.RecordRun()
	if err != nil || prev == nil || *prev != older {
		t.Fatalf("RecordRun = %v, %v; want the older run", prev, err)
	}
	if !s.RanBefore() {
		t.Error("RanBefore after this version's recorded run: want true")
	}
	if prev, err := s.RecordRun(); err != nil || prev != nil {
		t.Fatalf("second RecordRun = %v, %v; want nothing new", prev, err)
	}
	data, _ := os.ReadFile(p)
	if !strings.Contains(string(data), ThisRun().Kubernetes) {
		t.Fatalf("this run not recorded: %s", data)
	}
}
