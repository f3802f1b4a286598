package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/iks-dev/iks/tests/testutil"
)

// pathWithout returns a directory of links to every program of the host's
// PATH except those whose name starts with one of the prefixes: a PATH
// for a host that lacks those tools.
func pathWithout(t *testing.T, prefixes ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range filepath.SplitList(os.Getenv("PATH")) {
		entries, _ := os.ReadDir(d)
	next:
		for _, e := range entries {
			for _, p := range prefixes {
				if strings.HasPrefix(e.Name(), p) {
					continue next
				}
			}
			link := filepath.Join(dir, e.Name())
			if _, err := os.Lstat(link); err == nil {
				continue // an earlier PATH entry wins, as in the shell
			}
			if err := os.Symlink(filepath.Join(d, e.Name()), link); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

// A node on a host with nft and no iptables (kube-proxy in nftables
// mode) masquerades pod traffic leaving the cluster through its own
// nftables table and writes no iptables rule.
func TestNATOutgoingWithNFTablesOnly(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireTools(t, "nftables", "nft")
	nw := testutil.NewNetwork(t, "nft", 89)
	img := testutil.BuildImage(t, "./tests/images/httpd", httpdImage)
	srv := testutil.NewNodeOn(t, "nftsrv", nw, "a", 1)
	srv.Env = []string{"PATH=" + pathWithout(t, "iptables", "ip6tables", "xtables", "ebtables", "arptables")}
	srv.StageImage(img, "httpd.tar")
	srv.Start("--proxy-mode", "nftables")
	srv.WaitReady(3 * time.Minute)
	cs := srv.Client()
	createPod(t, cs, "web-"+srv.Name, srv.Name)
	waitPodRunning(t, cs, "web-"+srv.Name, 2*time.Minute)

	ext := testutil.NewNetns(t, "iks-nft-ext")
	extIP := nw.IP("ext", 10)
	nw.Attach(ext, "ext", extIP, "v-nft-ext")
	bin := testutil.BuildBinary(t, "./tests/images/httpd")
	server := exec.Command("nsenter", "--net="+ext.Path(), "--", bin)
	server.Env = append(os.Environ(), "PORT=8080")
	server.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = server.Process.Kill(); _ = server.Wait() })
	eventually(t, time.Minute, "pod → external host, NATed to the node IP", func() error {
		out, err := srv.Kubectl("exec", "web-"+srv.Name, "--", "/httpd", "get", "http://"+extIP+":8080/whoami")
		if err == nil && !strings.Contains(out, "client="+srv.IP) {
			err = fmt.Errorf("external host saw %q, want the node IP %s", out, srv.IP)
		}
		return err
	})

	table, err := srv.Net.Exec("nft", "list", "table", "ip", "iks-nat")
	if err != nil || !strings.Contains(table, "masquerade") {
		t.Errorf("no masquerade rule in table ip iks-nat on %s: %v\n%s", srv.Name, err, table)
	}
	if _, err := exec.LookPath("iptables-save"); err == nil {
		if rules, err := srv.Net.Exec("iptables-save", "-t", "nat"); err == nil && strings.Contains(rules, "IKS-NAT-OUTGOING") {
			t.Errorf("a node without iptables has iptables NAT rules:\n%s", rules)
		}
	}
}
