package lbpool

import "net/netip"

// LabelALB marks a kube-system Service as the Service of an Ingress ALB
// (its value is the ALB name): only such a Service may ask for a
// subnet's ALB address.
const LabelALB = "iks.io/alb"

// IsAnnounced reports whether a is an address Services may hold in the
// subnet: a service address or the ALB address.
func (s Subnet) IsAnnounced(a netip.Addr) bool {
	return s.IsServiceIP(a) || a == s.ALBIP()
}
