package csrapprove

import (
	"strings"
	"testing"

	certv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
)

func TestDecide(t *testing.T) {
	node := newNode("node-1", nil, "10.0.0.7", "fd00::7")
	annotated := newNode("node-1", map[string]string{InternalIPAnnotation: "192.0.2.1, 192.0.2.2"})
	cases := []struct {
		name   string
		spec   csrSpec
		node   *corev1.Node
		reason string // "" = approve
	}{
		{"valid", csrSpec{}, node, ""},
		{"IPv6 and several IPs", csrSpec{dns: []string{"node-1"}, ips: []string{"fd00::7", "10.0.0.7"}}, node, ""},
		{"DNS only, node unknown", csrSpec{dns: []string{"node-1"}, ips: []string{}}, nil, ""},
		{"key encipherment allowed", csrSpec{usages: []certv1.KeyUsage{certv1.UsageKeyEncipherment, certv1.UsageDigitalSignature, certv1.UsageServerAuth}}, node, ""},
		{"IP from annotation", csrSpec{ips: []string{"192.0.2.2"}, dns: []string{}}, annotated, ""},
		{"not a node", csrSpec{user: "alice", cn: "system:node:node-1"}, node, `requester "alice" is not a node`},
		{"not in system:nodes", csrSpec{groups: []string{"system:authenticated"}}, node, "not in group system:nodes"},
		{"CN of another node", csrSpec{cn: "system:node:node-2"}, node, `subject CN "system:node:node-2" differs`},
		{"extra organization", csrSpec{orgs: []string{"system:nodes", "system:masters"}}, node, "subject O"},
		{"client auth usage", csrSpec{usages: []certv1.KeyUsage{certv1.UsageDigitalSignature, certv1.UsageServerAuth, certv1.UsageClientAuth}}, node, `usage "client auth" is not allowed`},
		{"no server auth", csrSpec{usages: []certv1.KeyUsage{certv1.UsageDigitalSignature}}, node, `lack "server auth"`},
		{"foreign DNS name", csrSpec{dns: []string{"node-1", "kubernetes.default"}}, node, `DNS name "kubernetes.default" is not the node name`},
		{"foreign IP", csrSpec{ips: []string{"10.0.0.8"}}, node, "IP address 10.0.0.8 is not one of node node-1's addresses"},
		{"IP but node missing", csrSpec{}, nil, "node node-1 does not exist"},
		{"e-mail SAN", csrSpec{emails: []string{"a@example.com"}}, node, "e-mail or URI"},
		{"URI SAN", csrSpec{uris: []string{"spiffe://x/y"}}, node, "e-mail or URI"},
		{"no SANs", csrSpec{dns: []string{}, ips: []string{}}, node, "names no DNS name or IP"},
		{"bad signature", csrSpec{badSig: true}, node, "request"},
		{"not PEM", csrSpec{override: func(c *certv1.CertificateSigningRequest) { c.Spec.Request = []byte("junk") }}, node, "not a PEM CERTIFICATE REQUEST"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := decide(newCSR(t, c.spec), c.node)
			if c.reason == "" {
				if !d.approve {
					t.Fatalf("left pending: %s", d.reason)
				}
				return
			}
			if d.approve {
				t.Fatalf("approved; want pending with %q", c.reason)
			}
			if !strings.Contains(d.reason, c.reason) {
				t.Errorf("reason %q does not contain %q", d.reason, c.reason)
			}
		})
	}
}

func TestIsPendingServing(t *testing.T) {
	csr := newCSR(t, csrSpec{})
	if !isPendingServing(csr) {
		t.Error("fresh serving CSR is not pending")
	}
	client := newCSR(t, csrSpec{signer: certv1.KubeAPIServerClientKubeletSignerName})
	if isPendingServing(client) {
		t.Error("client CSR treated as a serving CSR")
	}
	denied := newCSR(t, csrSpec{})
	denied.Status.Conditions = []certv1.CertificateSigningRequestCondition{{Type: certv1.CertificateDenied, Status: corev1.ConditionTrue}}
	if isPendingServing(denied) {
		t.Error("denied CSR treated as pending")
	}
}
