package pki

import (
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// damage applies a change to an existing PKI that Ensure must refuse to
// repair, and the file the error must name.
type damage struct {
	name  string
	apply func(t *testing.T, p *PKI)
	file  func(p *PKI) string
}

func TestDamagedCAOrSAKeyIsAnErrorAndWritesNothing(t *testing.T) {
	remove := func(path func(*PKI) string) func(*testing.T, *PKI) {
		return func(t *testing.T, p *PKI) {
			if err := os.Remove(path(p)); err != nil {
				t.Fatal(err)
			}
		}
	}
	overwrite := func(path func(*PKI) string, data []byte) func(*testing.T, *PKI) {
		return func(t *testing.T, p *PKI) {
			if err := os.WriteFile(path(p), data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	caKey := func(p *PKI) string { return p.CAKey }
	caCert := func(p *PKI) string { return p.CACert }
	etcdKey := func(p *PKI) string { return p.EtcdCAKey }
	fpCert := func(p *PKI) string { return p.FrontProxyCACert }
	saKey := func(p *PKI) string { return p.ServiceAccountKey }

	cases := []damage{
		{"ca.key missing", remove(caKey), caKey},
		{"ca.crt missing", remove(caCert), caCert},
		{"ca.crt unparsable", overwrite(caCert, []byte("not a certificate\n")), caCert},
		{"ca.key unparsable", overwrite(caKey, []byte("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n")), caKey},
		{"etcd ca.key does not match", func(t *testing.T, p *PKI) {
			other, err := os.ReadFile(p.FrontProxyCAKey)
			if err != nil {
				t.Fatal(err)
			}
			overwrite(etcdKey, other)(t, p)
		}, etcdKey},
		{"front-proxy ca.crt is a leaf", func(t *testing.T, p *PKI) {
			leaf, err := os.ReadFile(p.FrontProxyClientCert)
			if err != nil {
				t.Fatal(err)
			}
			overwrite(fpCert, leaf)(t, p)
		}, fpCert},
		{"sa.key missing with sa.pub present", remove(saKey), saKey},
		{"sa.key unparsable", overwrite(saKey, []byte("garbage")), saKey},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opts := testOptions(t)
			p := mustEnsure(t, opts)
			c.apply(t, p)
			// Leaves that Ensure would otherwise re-create must stay absent.
			for _, f := range []string{p.AdminCert, p.KubeletServingKey} {
				if err := os.Remove(f); err != nil {
					t.Fatal(err)
				}
			}
			before := snapshot(t, opts.Dir)

			_, err := Ensure(opts)
			if err == nil {
				t.Fatal("Ensure succeeded on a damaged PKI")
			}
			if !strings.Contains(err.Error(), c.file(p)) {
				t.Errorf("error does not name %s: %v", c.file(p), err)
			}
			if !strings.Contains(err.Error(), "restore") {
				t.Errorf("error does not tell the user how to recover: %v", err)
			}
			if changed := changedFiles(before, snapshot(t, opts.Dir)); len(changed) > 0 {
				t.Errorf("failed Ensure changed %v", changed)
			}
		})
	}
}

// A ca.crt restored into an otherwise empty data dir without its key must
// not lead to anything being created next to it.
func TestCACertWithoutKeyInFreshDir(t *testing.T) {
	src := mustEnsure(t, testOptions(t))
	opts := testOptions(t)
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(src.CACert)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(opts.Dir, "ca.crt"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, opts.Dir)
	if _, err := Ensure(opts); err == nil || !strings.Contains(err.Error(), filepath.Join(opts.Dir, "ca.key")) {
		t.Fatalf("Ensure error = %v, want one naming ca.key", err)
	}
	if changed := changedFiles(before, snapshot(t, opts.Dir)); len(changed) > 0 {
		t.Errorf("failed Ensure wrote %v", changed)
	}
}

func TestDamagedLeavesAreReissued(t *testing.T) {
	opts := testOptions(t)
	p := mustEnsure(t, opts)
	if err := os.WriteFile(p.SchedulerCert, []byte("junk"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(p.KubeProxyKey); err != nil {
		t.Fatal(err)
	}
	// A client cert signed by the wrong CA (etcd's) is replaced.
	foreign, err := os.ReadFile(p.APIServerEtcdClientCert)
	if err != nil {
		t.Fatal(err)
	}
	foreignKey, err := os.ReadFile(p.APIServerEtcdClientKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p.ControllerManagerCert, foreign, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p.ControllerManagerKey, foreignKey, 0o600); err != nil {
		t.Fatal(err)
	}
	p = mustEnsure(t, opts)
	for _, pair := range [][2]string{{p.SchedulerCert, p.SchedulerKey}, {p.KubeProxyCert, p.KubeProxyKey},
		{p.ControllerManagerCert, p.ControllerManagerKey}} {
		verifyLeaf(t, pair[0], pair[1], p.CACert, x509.ExtKeyUsageClientAuth, "")
	}
	if cn := readCert(t, p.ControllerManagerCert).Subject.CommonName; cn != "system:kube-controller-manager" {
		t.Errorf("controller-manager CN = %q", cn)
	}
}

func TestIssueClientAndKubeletCerts(t *testing.T) {
	p := mustEnsure(t, testOptions(t))
	certPath, keyPath, err := p.IssueClientCert("iks-tunnel", "system:iks-tunnel", []string{"iks:tunnel"})
	if err != nil {
		t.Fatal(err)
	}
	cert := verifyLeaf(t, certPath, keyPath, p.CACert, x509.ExtKeyUsageClientAuth, "")
	if cert.Subject.CommonName != "system:iks-tunnel" || !slices.Equal(cert.Subject.Organization, []string{"iks:tunnel"}) {
		t.Errorf("subject = %v", cert.Subject)
	}
	before := snapshot(t, p.Dir)
	if again, _, err := p.IssueClientCert("iks-tunnel", "system:iks-tunnel", []string{"iks:tunnel"}); err != nil || again != certPath {
		t.Fatalf("second IssueClientCert = %q, %v", again, err)
	}
	if changed := changedFiles(before, snapshot(t, p.Dir)); len(changed) > 0 {
		t.Errorf("second IssueClientCert changed %v", changed)
	}
	// Changing the groups re-issues the certificate.
	if _, _, err := p.IssueClientCert("iks-tunnel", "system:iks-tunnel", []string{"system:masters"}); err != nil {
		t.Fatal(err)
	}
	if o := readCert(t, certPath).Subject.Organization; !slices.Equal(o, []string{"system:masters"}) {
		t.Errorf("groups not updated: %v", o)
	}

	for _, bad := range []string{"admin", "ca", "sa", "apiserver", "kubelet-client-x", "../escape", "a/b", "", "UPPER"} {
		if _, _, err := p.IssueClientCert(bad, "x", nil); err == nil {
			t.Errorf("IssueClientCert(%q) succeeded", bad)
		}
	}

	// A joining agent's kubelet certificates.
	ips := []net.IP{net.ParseIP("10.0.1.7")}
	sc, sk, err := p.IssueKubeletServing("worker-2", ips)
	if err != nil {
		t.Fatal(err)
	}
	verifyLeaf(t, sc, sk, p.CACert, x509.ExtKeyUsageServerAuth, "worker-2")
	verifyLeaf(t, sc, sk, p.CACert, x509.ExtKeyUsageServerAuth, "10.0.1.7")
	// A new address re-issues the serving certificate.
	if _, _, err := p.IssueKubeletServing("worker-2", append(ips, net.ParseIP("10.0.2.7"))); err != nil {
		t.Fatal(err)
	}
	verifyLeaf(t, sc, sk, p.CACert, x509.ExtKeyUsageServerAuth, "10.0.2.7")
	cc, ck, err := p.IssueKubeletClient("worker-2")
	if err != nil {
		t.Fatal(err)
	}
	if cert := verifyLeaf(t, cc, ck, p.CACert, x509.ExtKeyUsageClientAuth, ""); cert.Subject.CommonName != "system:node:worker-2" {
		t.Errorf("kubelet client CN = %q", cert.Subject.CommonName)
	}
	if _, _, err := p.IssueKubeletClient("Bad_Name"); err == nil {
		t.Error("IssueKubeletClient accepted an invalid node name")
	}
}

func TestOptionsValidation(t *testing.T) {
	cases := map[string]func(*Options){
		"no dir":          func(o *Options) { o.Dir = "" },
		"no node name":    func(o *Options) { o.NodeName = "" },
		"bad node name":   func(o *Options) { o.NodeName = "Node_1" },
		"no service IP":   func(o *Options) { o.ServiceIP = nil },
		"unspecified IP":  func(o *Options) { o.NodeIPs = []net.IP{net.IPv4zero} },
		"bad extra SAN":   func(o *Options) { o.ExtraSANs = []string{"bad name!"} },
		"empty extra SAN": func(o *Options) { o.ExtraSANs = []string{" "} },
		"bad domain":      func(o *Options) { o.ClusterDomain = "-bad-" },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			opts := testOptions(t)
			mutate(&opts)
			if _, err := Ensure(opts); err == nil {
				t.Fatal("Ensure accepted invalid options")
			}
			if opts.Dir != "" {
				if _, err := os.Stat(opts.Dir); !os.IsNotExist(err) {
					t.Errorf("invalid options still created %s", opts.Dir)
				}
			}
		})
	}
}

func TestWildcardAndIPNodeName(t *testing.T) {
	opts := testOptions(t)
	opts.NodeName = "10.0.0.5"
	opts.ExtraSANs = []string{"*.Apps.Example.com"}
	p := mustEnsure(t, opts)
	api := readCert(t, p.APIServerCert)
	if !slices.Contains(api.DNSNames, "*.apps.example.com") || slices.Contains(api.DNSNames, "10.0.0.5") {
		t.Errorf("apiserver DNS SANs = %v", api.DNSNames)
	}
	verifyLeaf(t, p.KubeletServingCert, p.KubeletServingKey, p.CACert, x509.ExtKeyUsageServerAuth, "10.0.0.5")
}

func TestLooseDirectoryModeIsTightened(t *testing.T) {
	opts := testOptions(t)
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(opts.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	mustEnsure(t, opts)
	info, err := os.Stat(opts.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %v, want 0700", info.Mode().Perm())
	}
}
