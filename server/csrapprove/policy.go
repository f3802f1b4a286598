// Package csrapprove approves kubelet serving certificate requests.
//
// kube-controller-manager approves the CSRs of kubelet client certificates
// (signer kubernetes.io/kube-apiserver-client-kubelet) by RBAC, but never
// those of kubelet serving certificates (kubernetes.io/kubelet-serving):
// a kubelet started with serverTLSBootstrap waits for a cluster-specific
// approver. This package is that approver. It approves a serving CSR only
// when every part of it matches the node that asks:
//
//   - the requester is system:node:<name> in the group system:nodes;
//   - the request's subject is CN=system:node:<name>, O=system:nodes;
//   - the usages are server auth plus at most digital signature and key
//     encipherment;
//   - the DNS names are <name> only, with no e-mail or URI names;
//   - every IP address is one of the Node's status addresses, or listed in
//     its [InternalIPAnnotation] or [ProvidedNodeIPAnnotation].
//
// Anything else stays pending, and one log line says why.
//
// It also decides on node-name claims (see package nodeclaim): the first
// machine to claim a name owns it until its Node is deleted; a claim of
// that name with another machine's key is denied, with the reason in the
// CSR's Denied condition, which the joining agent reports.
//
// And it approves a joining kubelet's client certificate request as soon
// as it sees it, by kube-controller-manager's rules plus a claimed node
// name (see client.go): the join's longest wait otherwise.
package csrapprove

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	certv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/iks-dev/iks/internal/api"
)

// Identities and annotations.
const (
	nodeUserPrefix = api.NodeUserPrefix
	groupNodes     = api.NodesGroup
	// InternalIPAnnotation may list (comma-separated) the node's internal
	// IPs, as the agent's --node-ip gives them.
	InternalIPAnnotation = "iks.io/internal-ip"
	// ProvidedNodeIPAnnotation is where kubelet records its --node-ip.
	ProvidedNodeIPAnnotation = "alpha.kubernetes.io/provided-node-ip"
)

// allowedUsages may appear in a kubelet serving CSR; server auth must.
var allowedUsages = []certv1.KeyUsage{certv1.UsageDigitalSignature, certv1.UsageKeyEncipherment, certv1.UsageServerAuth}

// decision is the outcome of checking one CSR.
type decision struct {
	approve bool
	// node is the node the CSR claims to be ("" if it does not claim one).
	node string
	// reason says why the CSR stays pending ("" when approved).
	reason string
}

// isPendingServing reports whether csr is a kubelet serving CSR on which
// nobody has decided yet.
func isPendingServing(csr *certv1.CertificateSigningRequest) bool {
	if csr.Spec.SignerName != certv1.KubeletServingSignerName || len(csr.Status.Certificate) > 0 {
		return false
	}
	return !decided(csr)
}

// decided reports whether a CSR was approved, denied or failed already.
func decided(csr *certv1.CertificateSigningRequest) bool {
	for _, c := range csr.Status.Conditions {
		if c.Type == certv1.CertificateApproved || c.Type == certv1.CertificateDenied || c.Type == certv1.CertificateFailed {
			return true
		}
	}
	return false
}

// nodeOf returns the node name a requester user name claims, or "".
func nodeOf(username string) string {
	name, ok := strings.CutPrefix(username, nodeUserPrefix)
	if !ok {
		return ""
	}
	return name
}

// decide checks a pending kubelet serving CSR against the node it claims
// to come from (nil when that Node does not exist).
func decide(csr *certv1.CertificateSigningRequest, node *corev1.Node) decision {
	name := nodeOf(csr.Spec.Username)
	pending := func(format string, a ...any) decision {
		return decision{node: name, reason: fmt.Sprintf(format, a...)}
	}
	if name == "" {
		return pending("requester %q is not a node (system:node:<name>)", csr.Spec.Username)
	}
	if !slices.Contains(csr.Spec.Groups, groupNodes) {
		return pending("requester %q is not in group %s (groups %v)", csr.Spec.Username, groupNodes, csr.Spec.Groups)
	}
	req, err := parseRequest(csr.Spec.Request)
	if err != nil {
		return pending("%v", err)
	}
	if req.Subject.CommonName != csr.Spec.Username {
		return pending("subject CN %q differs from the requester %q", req.Subject.CommonName, csr.Spec.Username)
	}
	if !slices.Equal(req.Subject.Organization, []string{groupNodes}) {
		return pending("subject O %q is not [%s]", req.Subject.Organization, groupNodes)
	}
	for _, u := range csr.Spec.Usages {
		if !slices.Contains(allowedUsages, u) {
			return pending("usage %q is not allowed (only %v)", u, allowedUsages)
		}
	}
	if !slices.Contains(csr.Spec.Usages, certv1.UsageServerAuth) {
		return pending("usages %v lack %q", csr.Spec.Usages, certv1.UsageServerAuth)
	}
	if len(req.EmailAddresses) > 0 || len(req.URIs) > 0 {
		return pending("request carries e-mail or URI names (%v %v); only the node name and IPs are allowed", req.EmailAddresses, req.URIs)
	}
	if len(req.DNSNames) == 0 && len(req.IPAddresses) == 0 {
		return pending("request names no DNS name or IP address")
	}
	for _, d := range req.DNSNames {
		if d != name {
			return pending("DNS name %q is not the node name %q", d, name)
		}
	}
	if len(req.IPAddresses) > 0 {
		if node == nil {
			return pending("node %s does not exist (yet), so its IP addresses %v cannot be checked", name, req.IPAddresses)
		}
		known := nodeIPs(node)
		for _, raw := range req.IPAddresses {
			ip, ok := netip.AddrFromSlice(raw)
			if !ok || !slices.Contains(known, ip.Unmap()) {
				return pending("IP address %s is not one of node %s's addresses %v", raw, name, known)
			}
		}
	}
	return decision{approve: true, node: name}
}

// parseRequest decodes and checks the signature of a PEM CSR.
func parseRequest(data []byte) (*x509.CertificateRequest, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return nil, fmt.Errorf("request is not a PEM CERTIFICATE REQUEST")
	}
	req, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("request is unparsable: %v", err)
	}
	if err := req.CheckSignature(); err != nil {
		return nil, fmt.Errorf("request signature is invalid: %v", err)
	}
	return req, nil
}

// nodeIPs lists the IPs a node is known by: its status addresses and the
// IPs of its node-IP annotations.
func nodeIPs(node *corev1.Node) []netip.Addr {
	var out []netip.Addr
	add := func(s string) {
		if ip, err := netip.ParseAddr(strings.TrimSpace(s)); err == nil && !slices.Contains(out, ip.Unmap()) {
			out = append(out, ip.Unmap())
		}
	}
	for _, a := range node.Status.Addresses {
		add(a.Address)
	}
	for _, key := range []string{InternalIPAnnotation, ProvidedNodeIPAnnotation} {
		for _, s := range strings.Split(node.Annotations[key], ",") {
			add(s)
		}
	}
	return out
}
