// Package alb is the server side of the Ingress ALBs: for every portable
// subnet it keeps, in kube-system, an ALB Deployment (image
// iks.local/alb, 2 replicas spread over nodes) and a LoadBalancer Service
// on the subnet's ALB address; the public ALBs start enabled, the
// private ones disabled, as in IKS. The enabled state lives in the
// ConfigMap kube-system/iks-alb-state that `iks alb enable|disable`
// edits. Without a public portable subnet one public ALB is served on
// the nodes' own addresses through a NodePort Service. All objects are
// written with server-side apply.
package alb

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/iks-dev/iks/internal/kubeapply"
	"github.com/iks-dev/iks/internal/lbpool"
)

// Names shared with the CLI and the ALB program.
const (
	Namespace = "kube-system"
	// StateConfigMap holds NAME: enabled|disabled and NAME.ip: the IP.
	StateConfigMap = "iks-alb-state"
	// DefaultCertSecret is the default certificate, signed by the cluster CA.
	DefaultCertSecret = "iks-alb-default-cert"
	ServiceAccount    = "iks-alb"
	PublicClass       = "public-iks-k8s-nginx"
	PrivateClass      = "private-iks-k8s-nginx"
	// LabelApp is on every ALB Deployment, pod and Service.
	LabelApp    = "app.kubernetes.io/name"
	AppName     = "iks-alb"
	FieldOwner  = kubeapply.FieldManager // one field manager for what iks owns
	Enabled     = "enabled"
	Disabled    = "disabled"
	Replicas    = 2
	HTTPPort    = 8080
	HTTPSPort   = 8443
	HealthPort  = 10254
	TCPServices = "tcp-services"
	UDPServices = "udp-services"
)

// ALB is one planned ALB.
type ALB struct {
	Name  string
	Kind  lbpool.Kind
	Class string
	// IP is the subnet's ALB address; invalid for the NodePort fallback.
	IP netip.Addr
	// DefaultEnabled: public ALBs start enabled, private ones disabled.
	DefaultEnabled bool
}

// Plan lists the ALBs of a cluster: per portable subnet, in flag order,
// public-cr<ID>-alb<N> and private-cr<ID>-alb<N>; without a public
// subnet one public NodePort ALB.
func Plan(clusterID string, subnets []lbpool.Subnet) []ALB {
	var out []ALB
	n := map[lbpool.Kind]int{}
	for _, s := range subnets {
		n[s.Kind]++
		a := ALB{Name: fmt.Sprintf("%s-cr%s-alb%d", s.Kind, clusterID, n[s.Kind]), Kind: s.Kind, IP: s.ALBIP(),
			Class: PublicClass, DefaultEnabled: s.Kind == lbpool.Public}
		if s.Kind == lbpool.Private {
			a.Class = PrivateClass
		}
		out = append(out, a)
	}
	if n[lbpool.Public] == 0 {
		out = append([]ALB{{Name: fmt.Sprintf("public-cr%s-alb1", clusterID), Kind: lbpool.Public, Class: PublicClass, DefaultEnabled: true}}, out...)
	}
	return out
}

// ClusterID derives a short cluster ID from the kube-system namespace UID.
func ClusterID(uid string) string {
	id := strings.ReplaceAll(uid, "-", "")
	if len(id) > 8 {
		id = id[:8]
	}
	return id
}

// IsEnabled reads an ALB's state from the state ConfigMap data.
func IsEnabled(a ALB, state map[string]string) bool {
	switch state[a.Name] {
	case Enabled:
		return true
	case Disabled:
		return false
	}
	return a.DefaultEnabled
}
