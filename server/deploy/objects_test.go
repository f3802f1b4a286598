package deploy

import (
	"strings"
	"testing"

	"github.com/iks-dev/iks/manifests"
)

func TestDecodeCoreDNS(t *testing.T) {
	data, err := manifests.Render("coredns", manifests.Values{ClusterDNS: "10.43.0.10", ClusterDomain: "edge.local",
		CoreDNSImage: "iks.local/coredns:1", APIServerHost: "10.0.0.5", APIServerPort: "6443"})
	if err != nil {
		t.Fatal(err)
	}
	objs, err := decode("coredns", data)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, o := range objs {
		kinds = append(kinds, describe(o))
		if o.GetLabels()[ManifestLabel] != "coredns" {
			t.Errorf("%s lacks the %s label", describe(o), ManifestLabel)
		}
	}
	want := "ServiceAccount kube-system/coredns,ClusterRole system:coredns,ClusterRoleBinding system:coredns," +
		"ConfigMap kube-system/coredns,Deployment kube-system/coredns,Service kube-system/kube-dns"
	if got := strings.Join(kinds, ","); got != want {
		t.Errorf("objects\n got %s\nwant %s", got, want)
	}
}

func TestDecodeRejectsIncompleteObjects(t *testing.T) {
	for doc, want := range map[string]string{
		"kind: ConfigMap\nmetadata: {name: x}\n":         "lacks apiVersion",
		"---\n---\n":                                     "no objects",
		"apiVersion: v1\nkind: ConfigMap\nmetadata: [\n": "document 0",
	} {
		if _, err := decode("t", []byte(doc)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", doc, err, want)
		}
	}
}
