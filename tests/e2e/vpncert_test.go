package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/iks-dev/iks/internal/vpnconn"
	"github.com/iks-dev/iks/tests/testutil"
)

// vpnCluster is what TestVPN's later subtests share: the server, the
// clients, the remote site, the nodes still alive and their pods' IPs.
type vpnCluster struct {
	srv      *testutil.Node
	cs       kubernetes.Interface
	dyn      dynamic.Interface
	site     *remoteSite
	alive    []*testutil.Node
	podIPs   map[string]string
	httpdBin string
}

// reachesRemote checks that the pod on every alive node reaches the
// remote host through the tunnel with its own address.
func (v *vpnCluster) reachesRemote(t *testing.T) {
	t.Helper()
	for _, n := range v.alive {
		pod := "vpn-" + n.Name
		eventually(t, 30*time.Second, pod+" → remote host", func() error {
			out, err := v.srv.Kubectl("exec", pod, "--", "/httpd", "get", "http://"+v.site.HostIP+":8080/whoami")
			if err == nil && strings.TrimSpace(out) != "client="+v.podIPs[n.Name] {
				err = fmt.Errorf("remote host saw %q, want client=%s", out, v.podIPs[n.Name])
			}
			return err
		})
	}
}

// deleteVPN deletes a connection and waits for it to be gone.
func (v *vpnCluster) deleteVPN(t *testing.T, name string) {
	t.Helper()
	if out, err := v.srv.Kubectl("delete", "vpnconnection", name, "--wait=true", "--ignore-not-found"); err != nil {
		t.Fatalf("delete %s: %v: %s", name, err, out)
	}
}

// remoteCertConf is the remote's connection "certs": it authenticates
// with its certificate (identity on-prem-cert, in its SAN; the key is
// dir/ecdsa/remote.key) and accepts
// any identity whose certificate the test CA signed.
func remoteCertConf(gwIP, dir string) string {
	return fmt.Sprintf(`connections {
  certs {
    version = 2
    local_addrs = %[1]s
    local { auth = pubkey
      certs = %[2]s/remote.crt
      id = on-prem-cert }
    remote { auth = pubkey
      cacerts = %[2]s/ca.crt }
    children { certs { local_ts = %[3]s
        remote_ts = 172.30.0.0/16,172.21.0.0/16 } }
  }
}
`, gwIP, dir, vpnLAN)
}

// testVPNCertificates: a missing certificate Secret is named in
// condition Valid; a connection with ipsec.authby pubkey and the default
// identities (the certificate's subject; any certificate of the CA)
// comes up with the real strongSwan peer, which sees the cluster's
// certificate subject as its identity; a renewed certificate rolls the
// gateway; a certificate of another CA is refused, and the condition
// names its Secret.
func testVPNCertificates(t *testing.T, v *vpnCluster) {
	applyVPN(t, v.srv, `{"apiVersion":"network.iks.io/v1","kind":"VPNConnection","metadata":{"name":"nocert"},
"spec":{"ipsec":{"authby":"pubkey"},"certificate":{"secretName":"no-such-cert"},"remote":{"subnet":"192.168.89.0/24"}}}`)
	c := waitVPN(t, v.dyn, "nocert", 30*time.Second, func(c *vpnconn.Conn) error {
		if e := c.Status.Condition(vpnconn.ConditionValid); e == nil || e.Status != metav1.ConditionFalse {
			return fmt.Errorf("Valid %+v, want False", e)
		}
		return nil
	})
	if msg := c.Status.Condition(vpnconn.ConditionValid).Message; !strings.Contains(msg, "Secret kube-system/no-such-cert not found") || !strings.Contains(msg, "tls.key") {
		t.Errorf("Valid message %q: want the missing Secret and what it must hold", msg)
	}
	v.deleteVPN(t, "nocert")

	ca := testutil.NewTestCA(t, "iks e2e VPN CA")
	clusterCrt, clusterKey := ca.Issue(t, "ibm-cloud-cert")
	remoteCrt, remoteKey := ca.Issue(t, "on-prem-cert")
	dir := v.site.dir
	// swanctl loads private keys from the ecdsa directory beside its
	// configuration file (a secrets section only holds their passphrases).
	if err := os.MkdirAll(filepath.Join(dir, "ecdsa"), 0o700); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"ca.crt": ca.CertPEM, "remote.crt": remoteCrt, "ecdsa/remote.key": remoteKey} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	v.site.charon.Load(swanctlConf(v.site.GWIP) + remoteCertConf(v.site.GWIP, dir))
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "site-cert", Namespace: vpnconn.Namespace}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{vpnconn.CertKey: clusterCrt, vpnconn.KeyKey: clusterKey, vpnconn.CAKey: ca.CertPEM}}
	if _, err := v.cs.CoreV1().Secrets(vpnconn.Namespace).Create(context.Background(), sec, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	applyVPN(t, v.srv, fmt.Sprintf(`{"apiVersion":"network.iks.io/v1","kind":"VPNConnection","metadata":{"name":"certs"},
"spec":{"ipsec":{"auto":"start","authby":"pubkey"},"certificate":{"secretName":"site-cert"},"remote":{"gateway":%q,"subnet":%q}}}`,
		v.site.GWIP, v.site.LAN))
	c = waitVPN(t, v.dyn, "certs", 60*time.Second, func(c *vpnconn.Conn) error {
		if !c.Up() {
			return fmt.Errorf("not established: %+v", c.Status.Conditions)
		}
		return nil
	})
	out, err := v.site.swanctl("--list-sas", "--ike", "certs")
	if err != nil || !strings.Contains(out, "ESTABLISHED") || !strings.Contains(out, "CN=ibm-cloud-cert") {
		t.Errorf("remote SA of certs: %v\n%s\nwant ESTABLISHED with the cluster's certificate subject CN=ibm-cloud-cert as its identity", err, out)
	}
	v.reachesRemote(t)

	// A renewed certificate (new key, as cert-manager renews) rolls the
	// gateway, which comes up with it.
	oldPod := c.Status.Gateway.Pod
	renewedCrt, renewedKey := ca.Issue(t, "ibm-cloud-cert")
	s, err := v.cs.CoreV1().Secrets(vpnconn.Namespace).Get(context.Background(), "site-cert", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.Data[vpnconn.CertKey], s.Data[vpnconn.KeyKey] = renewedCrt, renewedKey
	if _, err := v.cs.CoreV1().Secrets(vpnconn.Namespace).Update(context.Background(), s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitVPN(t, v.dyn, "certs", 60*time.Second, func(c *vpnconn.Conn) error {
		if c.Status.Gateway.Pod == oldPod || !c.Up() {
			return fmt.Errorf("gateway pod %s (was %s), established %v", c.Status.Gateway.Pod, oldPod, c.Up())
		}
		return nil
	})

	// A certificate of another CA: the remote refuses it, and the
	// condition names the Secret to look at.
	other := testutil.NewTestCA(t, "another CA")
	otherCrt, otherKey := other.Issue(t, "ibm-cloud-cert")
	sec = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "other-cert", Namespace: vpnconn.Namespace}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{vpnconn.CertKey: otherCrt, vpnconn.KeyKey: otherKey, vpnconn.CAKey: ca.CertPEM}}
	if _, err := v.cs.CoreV1().Secrets(vpnconn.Namespace).Create(context.Background(), sec, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	applyVPN(t, v.srv, fmt.Sprintf(`{"apiVersion":"network.iks.io/v1","kind":"VPNConnection","metadata":{"name":"othercert"},
"spec":{"ipsec":{"auto":"start","authby":"pubkey"},"certificate":{"secretName":"other-cert"},"remote":{"gateway":%q,"subnet":%q}}}`,
		v.site.GWIP, vpnBadLAN))
	c = waitVPN(t, v.dyn, "othercert", 60*time.Second, func(c *vpnconn.Conn) error {
		if e := c.Status.Condition(vpnconn.ConditionEstablished); e == nil || e.Reason != vpnconn.ReasonAuthFailed {
			return fmt.Errorf("Established %+v, want reason %s", e, vpnconn.ReasonAuthFailed)
		}
		return nil
	})
	if msg := c.Status.Condition(vpnconn.ConditionEstablished).Message; !strings.Contains(msg, "Secret kube-system/other-cert") {
		t.Errorf("condition message %q: want the certificate Secret named", msg)
	}
	v.deleteVPN(t, "othercert")
}
