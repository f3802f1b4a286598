package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/util/keyutil"
)

// wantFiles is every file a fresh Ensure creates for node-1, with its mode.
var wantFiles = map[string]fs.FileMode{
	"ca.crt": 0o600, "ca.key": 0o600,
	"front-proxy-ca.crt": 0o600, "front-proxy-ca.key": 0o600,
	"front-proxy-client.crt": 0o600, "front-proxy-client.key": 0o600,
	"etcd/ca.crt": 0o600, "etcd/ca.key": 0o600,
	"etcd/server.crt": 0o600, "etcd/server.key": 0o600,
	"etcd/peer.crt": 0o600, "etcd/peer.key": 0o600,
	"apiserver-etcd-client.crt": 0o600, "apiserver-etcd-client.key": 0o600,
	"apiserver.crt": 0o600, "apiserver.key": 0o600, "apiserver-chain.crt": 0o600,
	"apiserver-kubelet-client.crt": 0o600, "apiserver-kubelet-client.key": 0o600,
	"sa.key": 0o600, "sa.pub": 0o600,
	"admin.crt": 0o600, "admin.key": 0o600,
	"controller-manager.crt": 0o600, "controller-manager.key": 0o600,
	"scheduler.crt": 0o600, "scheduler.key": 0o600,
	"kube-proxy.crt": 0o600, "kube-proxy.key": 0o600,
	"kubelet-client-node-1.crt": 0o600, "kubelet-client-node-1.key": 0o600,
	"kubelet-serving-node-1.crt": 0o600, "kubelet-serving-node-1.key": 0o600,
}

func TestEnsureCreatesEveryFileWithModes(t *testing.T) {
	opts := testOptions(t)
	p := mustEnsure(t, opts)

	got := snapshot(t, opts.Dir)
	for rel, mode := range wantFiles {
		st, ok := got[rel]
		if !ok {
			t.Errorf("missing %s", rel)
			continue
		}
		if st.mode.Perm() != mode {
			t.Errorf("%s has mode %v, want %v", rel, st.mode.Perm(), mode)
		}
	}
	for rel, st := range got {
		if st.mode.IsDir() {
			if st.mode.Perm() != 0o700 {
				t.Errorf("directory %q has mode %v, want 0700", rel, st.mode.Perm())
			}
			continue
		}
		if _, ok := wantFiles[rel]; !ok {
			t.Errorf("unexpected file %s (leftover temporary file?)", rel)
		}
	}

	// Every path field of PKI points at one of those files.
	paths := []string{p.CACert, p.CAKey, p.FrontProxyCACert, p.FrontProxyCAKey, p.FrontProxyClientCert,
		p.FrontProxyClientKey, p.EtcdCACert, p.EtcdCAKey, p.EtcdServerCert, p.EtcdServerKey, p.EtcdPeerCert,
		p.EtcdPeerKey, p.APIServerEtcdClientCert, p.APIServerEtcdClientKey, p.APIServerCert, p.APIServerKey,
		p.APIServerChainCert, p.APIServerKubeletClientCert, p.APIServerKubeletClientKey, p.ServiceAccountKey, p.ServiceAccountPub,
		p.AdminCert, p.AdminKey, p.ControllerManagerCert, p.ControllerManagerKey, p.SchedulerCert, p.SchedulerKey,
		p.KubeProxyCert, p.KubeProxyKey, p.KubeletClientCert, p.KubeletClientKey, p.KubeletServingCert, p.KubeletServingKey}
	seen := map[string]bool{}
	for _, path := range paths {
		rel, err := filepath.Rel(p.Dir, path)
		if err != nil || !filepath.IsAbs(path) {
			t.Errorf("path %q is not absolute under %s", path, p.Dir)
		}
		if _, ok := wantFiles[rel]; !ok || seen[rel] {
			t.Errorf("PKI path %s is not a distinct created file", path)
		}
		seen[rel] = true
	}
	if len(seen) != len(wantFiles) {
		t.Errorf("PKI exposes %d paths, Ensure created %d files", len(seen), len(wantFiles))
	}

	// All generated keys are ECDSA P-256.
	for rel := range wantFiles {
		if !strings.HasSuffix(rel, ".key") {
			continue
		}
		key, err := parseKeyPEM(got[rel].data)
		if err != nil {
			t.Fatalf("%s: %v", rel, err)
		}
		if ec, ok := key.(*ecdsa.PrivateKey); !ok || ec.Curve != elliptic.P256() {
			t.Errorf("%s is %T, want ECDSA P-256", rel, key)
		}
	}
}

func TestEnsureIsIdempotent(t *testing.T) {
	opts := testOptions(t)
	first := mustEnsure(t, opts)
	before := snapshot(t, opts.Dir)
	second := mustEnsure(t, opts)
	if changed := changedFiles(before, snapshot(t, opts.Dir)); len(changed) > 0 {
		t.Fatalf("second Ensure changed %v", changed)
	}
	if first.CAHash() != second.CAHash() {
		t.Errorf("CAHash changed across restarts: %s != %s", first.CAHash(), second.CAHash())
	}
}

// An older iks wrote certificates 0644: a start makes them 0600 and
// leaves their content as it was.
func TestEnsureTightensOlderCertModes(t *testing.T) {
	opts := testOptions(t)
	mustEnsure(t, opts)
	for _, rel := range []string{"ca.crt", "etcd/server.crt", "sa.pub"} {
		if err := os.Chmod(filepath.Join(opts.Dir, rel), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	before := snapshot(t, opts.Dir)
	mustEnsure(t, opts)
	after := snapshot(t, opts.Dir)
	for rel, st := range before {
		if !bytes.Equal(st.data, after[rel].data) {
			t.Errorf("Ensure rewrote %s", rel)
		}
	}
	for _, rel := range []string{"ca.crt", "etcd/server.crt", "sa.pub"} {
		fi, err := os.Stat(filepath.Join(opts.Dir, rel))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v after a start, want 0600", rel, fi.Mode().Perm())
		}
	}
}

func TestCertificateChainsAndUsages(t *testing.T) {
	opts := testOptions(t)
	p := mustEnsure(t, opts)
	client, server := x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth
	cases := []struct {
		cert, key, ca string
		usage         x509.ExtKeyUsage
		host          string
		cn            string
		orgs          []string
	}{
		{p.APIServerCert, p.APIServerKey, p.CACert, server, "kubernetes.default.svc", "kube-apiserver", nil},
		{p.APIServerKubeletClientCert, p.APIServerKubeletClientKey, p.CACert, client, "", "kube-apiserver-kubelet-client", []string{"system:masters"}},
		{p.AdminCert, p.AdminKey, p.CACert, client, "", "admin", []string{"system:masters"}},
		{p.ControllerManagerCert, p.ControllerManagerKey, p.CACert, client, "", "system:kube-controller-manager", nil},
		{p.SchedulerCert, p.SchedulerKey, p.CACert, client, "", "system:kube-scheduler", nil},
		{p.KubeProxyCert, p.KubeProxyKey, p.CACert, client, "", "system:kube-proxy", nil},
		{p.KubeletClientCert, p.KubeletClientKey, p.CACert, client, "", "system:node:node-1", []string{"system:nodes"}},
		{p.KubeletServingCert, p.KubeletServingKey, p.CACert, server, "node-1", "system:node:node-1", []string{"system:nodes"}},
		{p.FrontProxyClientCert, p.FrontProxyClientKey, p.FrontProxyCACert, client, "", "front-proxy-client", nil},
		{p.EtcdServerCert, p.EtcdServerKey, p.EtcdCACert, server, "localhost", "etcd-server", nil},
		{p.EtcdServerCert, p.EtcdServerKey, p.EtcdCACert, client, "", "etcd-server", nil},
		{p.EtcdPeerCert, p.EtcdPeerKey, p.EtcdCACert, server, "10.0.0.5", "etcd-peer", nil},
		{p.EtcdPeerCert, p.EtcdPeerKey, p.EtcdCACert, client, "", "etcd-peer", nil},
		{p.APIServerEtcdClientCert, p.APIServerEtcdClientKey, p.EtcdCACert, client, "", "kube-apiserver-etcd-client", nil},
	}
	for _, c := range cases {
		cert := verifyLeaf(t, c.cert, c.key, c.ca, c.usage, c.host)
		if cert.Subject.CommonName != c.cn || !sameStrings(cert.Subject.Organization, c.orgs) {
			t.Errorf("%s subject CN=%q O=%q, want CN=%q O=%q", c.cert, cert.Subject.CommonName, cert.Subject.Organization, c.cn, c.orgs)
		}
		if cert.IsCA {
			t.Errorf("%s is a CA", c.cert)
		}
		if life := cert.NotAfter.Sub(cert.NotBefore); life < 364*24*time.Hour || life > 366*24*time.Hour {
			t.Errorf("%s lifetime %v, want about 1 year", c.cert, life)
		}
		if cert.SerialNumber.BitLen() > 128 || cert.SerialNumber.Sign() <= 0 {
			t.Errorf("%s serial %v is not a positive 128-bit number", c.cert, cert.SerialNumber)
		}
	}
	// A leaf must not verify against a CA it was not signed by.
	roots := x509.NewCertPool()
	roots.AddCert(readCert(t, p.EtcdCACert))
	if _, err := readCert(t, p.APIServerCert).Verify(x509.VerifyOptions{Roots: roots}); err == nil {
		t.Error("apiserver certificate verifies against the etcd CA")
	}
	for _, ca := range []string{p.CACert, p.FrontProxyCACert, p.EtcdCACert} {
		cert := readCert(t, ca)
		if !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
			t.Errorf("%s is not a signing CA", ca)
		}
		if life := cert.NotAfter.Sub(cert.NotBefore); life < 3649*24*time.Hour {
			t.Errorf("%s lifetime %v, want 10 years", ca, life)
		}
	}
	if readCert(t, p.CACert).Subject.CommonName == readCert(t, p.EtcdCACert).Subject.CommonName {
		t.Error("cluster and etcd CAs share a subject")
	}
}

func TestAPIServerSANs(t *testing.T) {
	opts := testOptions(t)
	opts.ClusterDomain = "corp.internal"
	p := mustEnsure(t, opts)
	cert := readCert(t, p.APIServerCert)
	for _, name := range []string{"kubernetes", "kubernetes.default", "kubernetes.default.svc",
		"kubernetes.default.svc.corp.internal", "localhost", "node-1", "api.example.com"} {
		if !slices.Contains(cert.DNSNames, name) {
			t.Errorf("apiserver certificate lacks DNS SAN %q (has %v)", name, cert.DNSNames)
		}
	}
	for _, ip := range []string{"127.0.0.1", "::1", "172.21.0.1", "10.0.0.5", "fd00::5", "192.0.2.10"} {
		if !slices.ContainsFunc(cert.IPAddresses, net.ParseIP(ip).Equal) {
			t.Errorf("apiserver certificate lacks IP SAN %s (has %v)", ip, cert.IPAddresses)
		}
	}
	etcd := readCert(t, p.EtcdServerCert)
	for _, ip := range []string{"127.0.0.1", "::1", "10.0.0.5", "fd00::5"} {
		if !slices.ContainsFunc(etcd.IPAddresses, net.ParseIP(ip).Equal) {
			t.Errorf("etcd server certificate lacks IP SAN %s (has %v)", ip, etcd.IPAddresses)
		}
	}
	kubelet := readCert(t, p.KubeletServingCert)
	if !slices.Equal(kubelet.DNSNames, []string{"node-1"}) || len(kubelet.IPAddresses) != 2 {
		t.Errorf("kubelet serving SANs = %v %v, want node-1 and the two node IPs", kubelet.DNSNames, kubelet.IPAddresses)
	}
}

func TestExtraSANReissuesOnlyAPIServer(t *testing.T) {
	opts := testOptions(t)
	mustEnsure(t, opts)
	before := snapshot(t, opts.Dir)

	opts.ExtraSANs = append(opts.ExtraSANs, "new.example.com", "198.51.100.7")
	p := mustEnsure(t, opts)
	after := snapshot(t, opts.Dir)
	if changed := changedFiles(before, after); !slices.Equal(changed, []string{"apiserver-chain.crt", "apiserver.crt"}) {
		t.Fatalf("changed files = %v, want only apiserver.crt and its chain (key reused, CA untouched)", changed)
	}
	cert := verifyLeaf(t, p.APIServerCert, p.APIServerKey, p.CACert, x509.ExtKeyUsageServerAuth, "new.example.com")
	if !slices.ContainsFunc(cert.IPAddresses, net.ParseIP("198.51.100.7").Equal) {
		t.Errorf("re-issued apiserver certificate lacks 198.51.100.7: %v", cert.IPAddresses)
	}

	// Dropping a SAN again keeps the (superset) certificate as is.
	opts.ExtraSANs = nil
	mustEnsure(t, opts)
	if changed := changedFiles(after, snapshot(t, opts.Dir)); len(changed) > 0 {
		t.Errorf("removing extra SANs changed %v", changed)
	}
}

func TestNearExpiryLeavesAreRenewed(t *testing.T) {
	opts := testOptions(t)
	realNow := time.Now()

	// 200 days old: 165 days left, beyond the 90-day window: nothing changes.
	if _, err := ensure(opts, func() time.Time { return realNow.Add(-200 * 24 * time.Hour) }); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, opts.Dir)
	mustEnsure(t, opts)
	if changed := changedFiles(before, snapshot(t, opts.Dir)); len(changed) > 0 {
		t.Fatalf("leaves with 165 days left were re-issued: %v", changed)
	}

	// 300 days old: 65 days left: every leaf certificate is renewed, with the
	// same CAs and keys.
	opts2 := testOptions(t)
	if _, err := ensure(opts2, func() time.Time { return realNow.Add(-300 * 24 * time.Hour) }); err != nil {
		t.Fatal(err)
	}
	before = snapshot(t, opts2.Dir)
	p := mustEnsure(t, opts2)
	after := snapshot(t, opts2.Dir)
	var wantChanged []string
	for rel := range wantFiles {
		if strings.HasSuffix(rel, ".crt") && !strings.HasSuffix(rel, "ca.crt") {
			wantChanged = append(wantChanged, rel)
		}
	}
	slices.Sort(wantChanged)
	if changed := changedFiles(before, after); !slices.Equal(changed, wantChanged) {
		t.Fatalf("changed = %v\nwant    %v", changed, wantChanged)
	}
	admin := verifyLeaf(t, p.AdminCert, p.AdminKey, p.CACert, x509.ExtKeyUsageClientAuth, "")
	if left := time.Until(admin.NotAfter); left < 364*24*time.Hour {
		t.Errorf("renewed admin certificate has only %v left", left)
	}
}

func TestLeafIsCappedAtCAExpiry(t *testing.T) {
	opts := testOptions(t)
	// CA created 9.9 years ago: it has ~36 days left, fewer than a leaf's year.
	old := time.Now().Add(-(caValidity - 36*24*time.Hour))
	p, err := ensure(opts, func() time.Time { return old })
	if err != nil {
		t.Fatal(err)
	}
	p.now = time.Now
	certPath, _, err := p.IssueClientCert("capped", "capped", nil)
	if err != nil {
		t.Fatal(err)
	}
	if ca, leaf := readCert(t, p.CACert), readCert(t, certPath); leaf.NotAfter.After(ca.NotAfter) {
		t.Errorf("leaf expires %v after its CA %v", leaf.NotAfter, ca.NotAfter)
	}
}

func TestCAHash(t *testing.T) {
	opts := testOptions(t)
	p := mustEnsure(t, opts)
	sum := sha256.Sum256(readCert(t, p.CACert).Raw)
	if want := hex.EncodeToString(sum[:]); p.CAHash() != want {
		t.Errorf("CAHash = %s, want %s", p.CAHash(), want)
	}
	if len(p.CAHash()) != 64 {
		t.Errorf("CAHash %q is not 64 hex digits", p.CAHash())
	}
	data, err := os.ReadFile(p.CACert)
	if err != nil {
		t.Fatal(err)
	}
	pemCopy := p.CACertPEM()
	if string(pemCopy) != string(data) {
		t.Error("CACertPEM differs from ca.crt")
	}
	pemCopy[0] = 'X'
	if p.CACertPEM()[0] == 'X' {
		t.Error("CACertPEM returns internal state")
	}
	if mustEnsure(t, opts).CAHash() != p.CAHash() {
		t.Error("CAHash changed on reload")
	}
}

// The service-account key pair must load with the same helpers
// kube-apiserver and kube-controller-manager use for their key flags.
func TestServiceAccountKeyAcceptedByKubernetes(t *testing.T) {
	p := mustEnsure(t, testOptions(t))
	priv, err := keyutil.PrivateKeyFromFile(p.ServiceAccountKey)
	if err != nil {
		t.Fatalf("--service-account-signing-key-file would reject %s: %v", p.ServiceAccountKey, err)
	}
	pubs, err := keyutil.PublicKeysFromFile(p.ServiceAccountPub)
	if err != nil || len(pubs) != 1 {
		t.Fatalf("--service-account-key-file would reject %s: %v (%d keys)", p.ServiceAccountPub, err, len(pubs))
	}
	ec, ok := priv.(*ecdsa.PrivateKey)
	if !ok || !ec.PublicKey.Equal(pubs[0]) {
		t.Errorf("sa.pub does not hold the public half of sa.key")
	}
}
