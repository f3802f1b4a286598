package ha

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/iks-dev/iks/internal/config"
	token "github.com/iks-dev/iks/internal/jointoken"
)

func testBundle() Bundle {
	b := Bundle{}
	for _, f := range SharedFiles {
		b[f] = []byte("content of " + f)
	}
	b["server/cluster.json"] = []byte(`{"format":1,"clusterCIDR":"172.30.0.0/16","serviceCIDR":"172.21.0.0/16","clusterDomain":"cluster.local","ipamBlockSize":26}`)
	return b
}

func TestSealOpensOnlyWithTheServerToken(t *testing.T) {
	tok := token.Token{CAHash: strings.Repeat("a", 64), ID: "abcdef", Secret: "0123456789abcdef"}
	sealed, err := testBundle().Seal(tok)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(sealed), "content of") {
		t.Fatal("bundle sealed in the clear")
	}
	b, err := Open(sealed, tok)
	if err != nil || !sameBundle(b, testBundle()) {
		t.Fatalf("Open: %v", err)
	}
	agent := tok
	agent.ID, agent.Secret = "zzzzzz", "fedcba9876543210"
	if _, err := Open(sealed, agent); err == nil || !strings.Contains(err.Error(), "server token") {
		t.Errorf("another token opened the bundle: %v", err)
	}
	other := tok
	other.CAHash = strings.Repeat("b", 64)
	if _, err := Open(sealed, other); err == nil {
		t.Error("the bundle opened for another CA hash")
	}
	sealed[len(sealed)-1] ^= 1
	if _, err := Open(sealed, tok); err == nil {
		t.Error("a tampered bundle opened")
	}
}

func TestSameClusterNamesTheFlag(t *testing.T) {
	cfg := &config.Server{ClusterCIDR: netip.MustParsePrefix("172.30.0.0/16"), ServiceCIDR: netip.MustParsePrefix("172.21.0.0/16"),
		ClusterDomain: "cluster.local", IPAMBlockSize: 26, HA: config.HA{JoinURL: "https://10.0.0.1:6443"}}
	if err := sameCluster(testBundle(), cfg); err != nil {
		t.Fatal(err)
	}
	cfg.IPAMBlockSize = 24
	cfg.ServiceCIDR = netip.MustParsePrefix("10.96.0.0/16")
	err := sameCluster(testBundle(), cfg)
	for _, want := range []string{"--ipam-block-size 26", "--service-cidr 172.21.0.0/16"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("mismatch error %v lacks %q", err, want)
		}
	}
}

func TestEtcdEndpoints(t *testing.T) {
	if got := EtcdEndpoints("https://10.0.0.1:6443"); len(got) != 1 || got[0] != "https://10.0.0.1:2379" {
		t.Errorf("got %v", got)
	}
}
