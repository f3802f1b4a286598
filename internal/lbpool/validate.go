package lbpool

import (
	"fmt"
	"net/netip"
)

// Range is a named address range portable subnets must stay out of.
type Range struct {
	Flag   string // e.g. "--cluster-cidr"
	Prefix netip.Prefix
}

// Validate checks a parsed set of portable subnets against each other,
// against the cluster's own ranges and against the node IP. Every problem
// is returned, each naming the values and the fix.
func Validate(subnets []Subnet, avoid []Range, nodeIP netip.Addr) []error {
	var errs []error
	for i, s := range subnets {
		for _, o := range subnets[:i] {
			if s.Prefix.Overlaps(o.Prefix) {
				errs = append(errs, fmt.Errorf("portable subnets %s (%s) and %s (%s) overlap: every portable subnet must be a separate range; remove or change one of them",
					o.Prefix, o.Kind, s.Prefix, s.Kind))
			}
		}
		for _, r := range avoid {
			if r.Prefix.IsValid() && s.Prefix.Overlaps(r.Prefix) {
				errs = append(errs, fmt.Errorf("--portable-%s-subnet %s overlaps %s %s, which iks routes to pods or services: use a portable subnet outside %s",
					s.Kind, s.Prefix, r.Flag, r.Prefix, r.Prefix))
			}
		}
		if nodeIP.IsValid() && s.Prefix.Contains(nodeIP) {
			errs = append(errs, fmt.Errorf("--portable-%s-subnet %s contains this node's IP %s: a portable subnet is for LoadBalancer and ALB IPs only; use a range without node addresses",
				s.Kind, s.Prefix, nodeIP))
		}
	}
	return errs
}
