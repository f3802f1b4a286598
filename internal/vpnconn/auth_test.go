package vpnconn

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/iks-dev/iks/tests/testutil"
)

func certSpec() Spec {
	s := validSpec()
	s.Preshared = Preshared{}
	s.IPsec.AuthBy = "pubkey"
	s.Certificate.SecretName = "site-cert"
	return s
}

func TestValidateCertificates(t *testing.T) {
	p, err := Validate("c", certSpec(), testCluster)
	if err != nil {
		t.Fatal(err)
	}
	if !p.UsesCertificates() || p.CertSecret != "site-cert" || p.LocalID != "" || p.RemoteID != "%any" || p.SecretName != "" {
		t.Errorf("pubkey plan: auth %s secret %q ids %q %q psk %q", p.Auth, p.CertSecret, p.LocalID, p.RemoteID, p.SecretName)
	}
	s := certSpec()
	s.IPsec.AuthBy, s.Local.ID, s.Remote.ID = "rsasig", "cluster.example", "onprem.example"
	if p, err = Validate("c", s, testCluster); err != nil || p.Auth != AuthPubkey || p.LocalID != "cluster.example" || p.RemoteID != "onprem.example" {
		t.Errorf("rsasig with identities: %+v %v", p, err)
	}
	for _, tc := range []struct {
		name string
		mod  func(*Spec)
		want string
	}{
		{"no certificate secret", func(s *Spec) { s.Certificate.SecretName = "" }, "ipsec.authby pubkey needs certificate.secretName"},
		{"both", func(s *Spec) { s.Preshared.SecretName = "psk" }, `preshared.secretName "psk" is set but ipsec.authby is pubkey`},
		{"certificate with psk", func(s *Spec) { s.IPsec.AuthBy = "psk"; s.Preshared.SecretName = "psk" }, "set ipsec.authby to pubkey"},
		{"bad authby", func(s *Spec) { s.IPsec.AuthBy = "xauth" }, `ipsec.authby "xauth": use psk`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := certSpec()
			tc.mod(&s)
			if _, err := Validate("c", s, testCluster); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestCheckCredentials(t *testing.T) {
	ca := testutil.NewTestCA(t, "test CA")
	crt, key := ca.Issue(t, "ibm-cloud")
	_, otherKey := ca.Issue(t, "other")
	good := map[string][]byte{CertKey: crt, KeyKey: key, CAKey: ca.CertPEM}
	if err := CheckCredentials("s", good); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		data map[string][]byte
		want string
	}{
		"missing key":  {map[string][]byte{CertKey: crt, CAKey: ca.CertPEM}, "Secret kube-system/s has no tls.key"},
		"missing all":  {map[string][]byte{}, "has no tls.crt, tls.key, ca.crt"},
		"wrong key":    {map[string][]byte{CertKey: crt, KeyKey: otherKey, CAKey: ca.CertPEM}, "tls.crt and tls.key are not a certificate and its private key"},
		"CA not a PEM": {map[string][]byte{CertKey: crt, KeyKey: key, CAKey: []byte("nope")}, "ca.crt is not a PEM CA certificate"},
	} {
		if err := CheckCredentials("s", tc.data); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to contain %q", name, err, tc.want)
		}
	}
}

func TestLoadConnCertificates(t *testing.T) {
	ca := testutil.NewTestCA(t, "test CA")
	crt, key := ca.Issue(t, "ibm-cloud")
	cred := &Credentials{Cert: crt, Key: key, CA: ca.CertPEM}
	p, err := Validate("c", certSpec(), testCluster)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.LoadConn(nil, nil); err == nil {
		t.Error("a pubkey connection without credentials was built")
	}
	m, err := p.LoadConn(nil, cred)
	if err != nil {
		t.Fatal(err)
	}
	conn := section(t, m, "c")
	local, remote := section(t, conn, "local"), section(t, conn, "remote")
	if local.Get("auth") != "pubkey" || remote.Get("auth") != "pubkey" || remote.Get("id") != "%any" || local.Get("id") != nil {
		t.Errorf("auth sections: local %s remote %s", local, remote)
	}
	if got, _ := local.Get("certs").([]string); len(got) != 1 || got[0] != string(crt) {
		t.Errorf("local certs %v, want tls.crt", got)
	}
	if got, _ := remote.Get("cacerts").([]string); len(got) != 1 || got[0] != string(ca.CertPEM) {
		t.Errorf("remote cacerts %v, want ca.crt", got)
	}
	certs, err := cred.LoadCerts()
	if err != nil || len(certs) != 2 || certs[0].Get("flag") != "CA" || certs[0].Get("type") != "X509" || certs[1].Get("flag") != "NONE" {
		t.Errorf("load-cert messages %v %v", certs, err)
	}
	k, err := cred.LoadKey()
	if err != nil || k.Get("type") != "ecdsa" || k.Get("data") != string(key) {
		t.Errorf("load-key %v %v", k, err)
	}
	if _, err := (&Credentials{Key: []byte("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n")}).LoadKey(); err == nil {
		t.Error("an encrypted key was accepted")
	}
}

func TestLoadBalancerIP(t *testing.T) {
	s := validSpec()
	s.LoadBalancerIP = "10.10.10.101"
	p, err := Validate("c", s, testCluster)
	if err != nil || p.LoadBalancerIP != netip.MustParseAddr("10.10.10.101") || p.ConnectUsingLB {
		t.Fatalf("auto with ipsec.auto add: %+v %v (the remote connects in, nothing to send from)", p, err)
	}
	s.IPsec.Auto, s.Remote.Gateway = "start", "198.51.100.7"
	if p, err = Validate("c", s, testCluster); err != nil || !p.ConnectUsingLB {
		t.Fatalf("auto with ipsec.auto start: %+v %v", p, err)
	}
	s.ConnectUsingLoadBalancerIP = "false"
	if p, _ = Validate("c", s, testCluster); p.ConnectUsingLB {
		t.Error("connectUsingLoadBalancerIP false ignored")
	}
	m, err := p.LoadConn([]netip.Addr{netip.MustParseAddr("10.10.10.101"), netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("10.10.10.101")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := section(t, m, "c").Get("local_addrs").([]string); !slices.Equal(got, []string{"10.10.10.101", "192.0.2.10"}) {
		t.Errorf("local_addrs %v: want the load balancer IP first, no duplicates", got)
	}
	for v, want := range map[string]string{"10.10.10.300": `loadBalancerIP "10.10.10.300"`, "fd00::1": `loadBalancerIP "fd00::1"`} {
		s := validSpec()
		s.LoadBalancerIP = v
		if _, err := Validate("c", s, testCluster); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err %v", v, err)
		}
	}
	s = validSpec()
	s.ConnectUsingLoadBalancerIP = "true"
	if _, err := Validate("c", s, testCluster); err == nil || !strings.Contains(err.Error(), "connectUsingLoadBalancerIP true needs loadBalancerIP") {
		t.Errorf("true without an IP: %v", err)
	}
	s.ConnectUsingLoadBalancerIP = "yes"
	if _, err := Validate("c", s, testCluster); err == nil || !strings.Contains(err.Error(), `connectUsingLoadBalancerIP "yes"`) {
		t.Errorf("yes: %v", err)
	}
}

func TestFlagAcceptsBooleans(t *testing.T) {
	for in, want := range map[string]Flag{`true`: "true", `false`: "false", `"auto"`: "auto", `null`: ""} {
		var f Flag
		if err := f.UnmarshalJSON([]byte(in)); err != nil || f != want {
			t.Errorf("%s: %q %v", in, f, err)
		}
	}
	var f Flag
	if err := f.UnmarshalJSON([]byte(`1`)); err == nil {
		t.Error("a number was accepted")
	}
}

func TestFromUnstructuredBooleanFlag(t *testing.T) {
	u := &unstructured.Unstructured{Object: map[string]any{"metadata": map[string]any{"name": "c"},
		"spec": map[string]any{"connectUsingLoadBalancerIP": true, "loadBalancerIP": "10.10.10.101"}}}
	c, err := FromUnstructured(u)
	if err != nil || c.Spec.ConnectUsingLoadBalancerIP != "true" {
		t.Fatalf("spec %+v %v: want the boolean read as \"true\"", c, err)
	}
}
