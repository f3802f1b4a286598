package ha

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"

	"github.com/iks-dev/iks/internal/config"
)

// TestJoinDatastoreKinds: a server on an external datastore may join a
// cluster on embedded etcd (that etcd is its datastore); a server on
// embedded etcd may not join a cluster whose state is in an external one.
// The joiner's cluster.json records its own datastore.
func TestJoinDatastoreKinds(t *testing.T) {
	ext := &config.ExternalDatastore{Endpoints: []string{"https://etcd1:2379"}}
	cfg := &config.Server{ClusterCIDR: netip.MustParsePrefix("172.30.0.0/16"), ServiceCIDR: netip.MustParsePrefix("172.21.0.0/16"),
		ClusterDomain: "cluster.local", IPAMBlockSize: 26, HA: config.HA{JoinURL: "https://10.0.0.1:6443"},
		Datastore: config.Datastore{External: ext}}
	if err := sameCluster(testBundle(), cfg); err != nil {
		t.Fatalf("external joiner of an embedded cluster: %v", err)
	}
	data, err := ownDatastore(testBundle()["server/cluster.json"], cfg)
	if err != nil {
		t.Fatal(err)
	}
	var ci config.ClusterInfo
	if err := json.Unmarshal(data, &ci); err != nil || !ci.Datastore.External() || ci.Datastore.Endpoints[0] != "https://etcd1:2379" || ci.IPAMBlockSize != 26 {
		t.Fatalf("joiner's cluster.json %s: %v", data, err)
	}

	b := testBundle()
	b["server/cluster.json"] = data // the cluster's first server is on the external etcd
	cfg.Datastore.External = nil
	err = sameCluster(b, cfg)
	for _, want := range []string{"external datastore https://etcd1:2379", "pass --datastore-endpoint https://etcd1:2379"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("embedded joiner of an external cluster: %v, want %q", err, want)
		}
	}
	if data, _ := ownDatastore(b["server/cluster.json"], cfg); !strings.Contains(string(data), `"kind": "embedded"`) {
		t.Errorf("embedded joiner's cluster.json: %s", data)
	}
}
