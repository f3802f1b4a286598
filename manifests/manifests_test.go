package manifests

import (
	"strings"
	"testing"
)

func testValues() Values {
	return Values{ClusterDNS: "172.21.0.10", ClusterDomain: "cluster.local", CoreDNSImage: "iks.local/coredns:1.15.0",
		APIServerHost: "10.0.0.5", APIServerPort: "6443"}
}

func TestNames(t *testing.T) {
	if got := strings.Join(Names(), ","); !strings.Contains(got, "coredns") {
		t.Fatalf("Names() = %s, want coredns among them", got)
	}
	if !Known("coredns") || Known("nope") || Known("../manifests") {
		t.Error("Known answers wrongly")
	}
}

func TestRenderCoreDNS(t *testing.T) {
	out, err := Render("coredns", testValues())
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	for _, want := range []string{
		"clusterIP: 172.21.0.10",
		"kubernetes cluster.local in-addr.arpa ip6.arpa",
		"image: iks.local/coredns:1.15.0",
		"forward . /etc/resolv.conf",
		"path: /ready",
		"path: /health",
		`value: "10.0.0.5"`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("rendered coredns manifest lacks %q", want)
		}
	}
	if strings.Contains(s, "replicas:") {
		t.Error("the manifest sets replicas, which the replica controller owns")
	}
}

func TestRenderRefusesMissingValues(t *testing.T) {
	v := testValues()
	v.ClusterDNS = ""
	if _, err := Render("coredns", v); err == nil || !strings.Contains(err.Error(), "ClusterDNS") {
		t.Fatalf("render without ClusterDNS: %v, want an error naming it", err)
	}
	if _, err := Render("nope", testValues()); err == nil || !strings.Contains(err.Error(), "coredns") {
		t.Fatalf("unknown manifest: %v, want an error listing the manifests", err)
	}
}
