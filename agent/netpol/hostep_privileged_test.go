package netpol

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/knftables"
	"sigs.k8s.io/yaml"

	"github.com/iks-dev/iks/manifests"
	"github.com/iks-dev/iks/tests/testutil"
)

var denyNodePorts = testutil.IKSTutorialDenyNodePorts

// calicoFrom decodes YAML documents into CalicoObjects (other kinds are
// left out).
func calicoFrom(t *testing.T, docs ...string) *CalicoObjects {
	t.Helper()
	var out CalicoObjects
	kinds := map[string]int{"GlobalNetworkPolicy": 0, "NetworkPolicy": 1, "HostEndpoint": 2, "GlobalNetworkSet": 3, "NetworkSet": 4}
	for _, d := range docs {
		for _, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(d, -1) {
			var m map[string]any
			if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
				t.Fatalf("yaml: %v\n%s", err, doc)
			}
			u := &unstructured.Unstructured{Object: m}
			if i, ok := kinds[u.GetKind()]; ok && u.GetAPIVersion() == "projectcalico.org/v3" {
				out[i] = append(out[i], u)
			}
		}
	}
	return &out
}

// defaultPolicies are the IKS default policies of the manifest iks ships.
func defaultPolicies(t *testing.T) string {
	t.Helper()
	data, err := manifests.Render("network-policy", manifests.Values{ClusterDNS: "172.21.0.10", ClusterDomain: "cluster.local",
		CoreDNSImage: "x", APIServerHost: "10.0.0.1", APIServerPort: "6443", ClusterCIDR: "172.30.0.0/16"})
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func counter(t *testing.T, host *testutil.Netns, table, chain string) int {
	t.Helper()
	out, err := host.Exec("nft", "list", "chain", "inet", table, chain)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`packets (\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no counter in %s", out)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// TestHostEndpointDataplane: IKS's host protection on a node with a
// private (priv0) and a public (pub0) interface, a pod behind a NodePort
// (a DNAT standing in for kube-proxy): the default policies, the
// tutorial's deny-nodeports (preDNAT) closing the public NodePort only,
// doNotTrack, and failsafe ports under a deny-all.
func TestHostEndpointDataplane(t *testing.T) {
	testutil.RequireRoot(t)
	if _, err := exec.LookPath("nft"); err != nil {
		t.Fatal("needs nft")
	}
	id := fmt.Sprint(os.Getpid()%100000 + 1)
	host := testutil.NewNetns(t, "hp"+id+"-host")
	testutil.MustRun(t, "ip", "netns", "exec", host.Name, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	privc := testutil.NewNetns(t, "hp"+id+"-privc")
	pubc := testutil.NewNetns(t, "hp"+id+"-pubc")
	for _, l := range []struct {
		ns              *testutil.Netns
		dev, hostIP, ip string
	}{{privc, "priv0", "10.97.0.1", "10.97.0.2"}, {pubc, "pub0", "203.0.113.1", "203.0.113.2"}} {
		testutil.MustRun(t, "ip", "-n", host.Name, "link", "add", l.dev, "type", "veth", "peer", "name", "eth0", "netns", l.ns.Name)
		testutil.MustRun(t, "ip", "-n", host.Name, "addr", "add", l.hostIP+"/24", "dev", l.dev)
		testutil.MustRun(t, "ip", "-n", host.Name, "link", "set", l.dev, "up")
		testutil.MustRun(t, "ip", "-n", l.ns.Name, "addr", "add", l.ip+"/24", "dev", "eth0")
		testutil.MustRun(t, "ip", "-n", l.ns.Name, "link", "set", "eth0", "up")
	}
	web := wirePod(t, host, id, "hweb", "172.30.7.2")
	serve(t, web.ns, 8080)
	for _, port := range []int{9000, 9001, 6443} {
		serve(t, host, port)
	}
	serve(t, privc, 6443)
	serve(t, privc, 8081)
	// kube-proxy's NodePort, on every address of the node.
	natT := "ip hp" + id + "-nat"
	nat := "add table " + natT + "; add chain " + natT + " pre { type nat hook prerouting priority dstnat; }; add rule " + natT + " pre tcp dport 30080 dnat to 172.30.7.2:8080"
	if out, err := host.Exec("nft", nat); err != nil {
		t.Fatalf("%v: %s", err, out)
	}

	heps := []*HostEndpoint{
		{Name: node + "-worker-private", Node: node, Interface: "priv0", IPs: addrs("10.97.0.1"), Labels: labels.Set{LabelRole: RolePrivate}},
		{Name: node + "-worker-public", Node: node, Interface: "pub0", IPs: addrs("203.0.113.1"), Labels: labels.Set{LabelRole: RolePublic}},
	}
	pods := []*Endpoint{{Namespace: "app", Name: "web", Node: node, IP: addrs("172.30.7.2")[0], Labels: labels.Set{"app": "web"}}}
	w := NewWriter(mustNFT(t, host))
	apply := func(docs ...string) {
		t.Helper()
		pols, hs, sets := TranslateCalico(calicoFrom(t, docs...), func(err error) { t.Fatalf("translate: %v", err) })
		if len(hs) != 0 {
			t.Fatal("host endpoints come from the test")
		}
		prog := CompileInput(&Input{Policies: pols, Endpoints: pods, HostEndpoints: heps, NetworkSets: sets, Node: node, VethPrefix: "cali"})
		if err := inHost(host, func() error { _, err := w.Apply(context.Background(), prog); return err }); err != nil {
			t.Fatalf("apply: %v", err)
		}
	}
	want := func(from *testutil.Netns, name, addr string, ok bool) {
		t.Helper()
		err := reach(from, addr)
		if ok && err != nil {
			t.Errorf("%s -> %s blocked (%v), want open", name, addr, err)
		}
		if !ok && err == nil {
			t.Errorf("%s -> %s open, want blocked", name, addr)
		}
	}
	defaults := defaultPolicies(t)
	pubNP, privNP := "203.0.113.1:30080", "10.97.0.1:30080"

	apply(defaults)
	want(pubc, "public client", pubNP, true)
	want(privc, "private client", privNP, true)
	want(pubc, "public client to a host port", "203.0.113.1:9000", false)
	want(privc, "private client to a host port", "10.97.0.1:9000", true)
	want(pubc, "public client to the API port (failsafe)", "203.0.113.1:6443", true)
	open, err := pubc.DialContext(context.Background(), "tcp", pubNP)
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()

	apply(defaults, denyNodePorts)
	want(pubc, "public client under deny-nodeports", pubNP, false)
	want(privc, "private client under deny-nodeports", privNP, true)
	want(pubc, "public client to the API port (failsafe)", "203.0.113.1:6443", true)
	if err := ping(open); err != nil {
		t.Errorf("public NodePort connection established before deny-nodeports broke: %v", err)
	}

	untracked := `
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: untracked}
spec:
  selector: ibm.role == 'worker_private'
  order: 10
  doNotTrack: true
  applyOnForward: true
  ingress:
  - {action: Allow, protocol: TCP, destination: {ports: [9000]}}
  - {action: Deny, protocol: TCP, destination: {ports: ["9001"]}}
  egress:
  - {action: Allow, protocol: TCP, source: {ports: [9000]}}
`
	apply(defaults, untracked)
	cnt := "hp" + id + "-cnt"
	if out, err := host.Exec("nft", "add table inet "+cnt+"; add chain inet "+cnt+" c { type filter hook input priority 10; }; add rule inet "+cnt+" c tcp dport 9000 ct state untracked counter"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	want(privc, "private client to an untracked port", "10.97.0.1:9000", true)
	if n := counter(t, host, cnt, "c"); n == 0 {
		t.Error("no untracked packet to port 9000 counted: doNotTrack did not untrack")
	}
	want(privc, "private client to a port an untracked Deny drops", "10.97.0.1:9001", false)

	denyAll := `
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: deny-all-private}
spec:
  selector: ibm.role == 'worker_private'
  order: 5
  applyOnForward: true
  types: [Ingress, Egress]
  ingress: [{action: Log}, {action: Deny}]
  egress: [{action: Deny}]
`
	apply(defaults, denyAll)
	want(privc, "private client under deny-all", "10.97.0.1:9000", false)
	want(privc, "private client to the API port under deny-all (failsafe)", "10.97.0.1:6443", true)
	want(host, "node to the private side's API port under deny-all (failsafe)", "10.97.0.2:6443", true)
	want(host, "node to a private port under deny-all", "10.97.0.2:8081", false)
	want(privc, "private client to the NodePort under a forwarded deny-all", privNP, false)
	want(pubc, "public client to the public NodePort (other host endpoint)", pubNP, true)
}

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}

// mustNFT is a knftables interface on the policy table in ns.
func mustNFT(t *testing.T, ns *testutil.Netns) knftables.Interface {
	t.Helper()
	var nft knftables.Interface
	if err := inHost(ns, func() error {
		var err error
		nft, err = knftables.New(knftables.InetFamily, TableName)
		return err
	}); err != nil {
		t.Fatalf("nftables: %v", err)
	}
	return nft
}

// TestCalicoRulesLoad: the kernel takes every kind of Calico rule and the
// host endpoint chains (the compiler's text is valid nft).
func TestCalicoRulesLoad(t *testing.T) {
	testutil.RequireRoot(t)
	ns := testutil.NewNetns(t, fmt.Sprintf("hl%d", os.Getpid()%100000))
	_, input := calicoFixture(t)
	input.HostEndpoints = []*HostEndpoint{{Name: "n1-all", Node: node, Interface: "*", Labels: labels.Set{"app": "web"}}}
	untracked := `
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: untracked}
spec:
  selector: app == 'web'
  doNotTrack: true
  applyOnForward: true
  ingress: [{action: Allow, protocol: UDP, destination: {ports: [4000]}}]
  egress: [{action: Deny, protocol: UDP, source: {ports: [4000]}}]
`
	pols, _, _ := TranslateCalico(calicoFrom(t, defaultPolicies(t), denyNodePorts, untracked), func(err error) { t.Fatal(err) })
	input.Policies = append(input.Policies, pols...)
	w := NewWriter(mustNFT(t, ns))
	if err := inHost(ns, func() error { _, err := w.Apply(context.Background(), CompileInput(input)); return err }); err != nil {
		t.Fatalf("load: %v", err)
	}
	out, err := ns.Exec("nft", "list", "table", "inet", TableName)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"notrack", `log prefix "iks-policy web ingress: "`, "icmp code != net-unreachable", "hook prerouting priority dstnat - 10", "hook output priority raw"} {
		if !strings.Contains(out, want) {
			t.Errorf("loaded table lacks %q", want)
		}
	}
}
