package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/iks-dev/iks/agent/netpol"
)

// hostRow is one host endpoint in `iks policy show --node`: the policies
// of each stage, in evaluation order.
type hostRow struct {
	Name      string   `json:"name"`
	Interface string   `json:"interface"`
	IPs       []string `json:"expectedIPs"`
	Labels    string   `json:"labels"`
	// Stages in packet order; an empty list means no policy there.
	PreDNAT          []string `json:"preDNAT"`
	UntrackedIngress []string `json:"untrackedIngress"`
	UntrackedEgress  []string `json:"untrackedEgress"`
	Ingress          []string `json:"ingress"`
	Egress           []string `json:"egress"`
	ForwardIngress   []string `json:"forwardIngress"`
	ForwardEgress    []string `json:"forwardEgress"`
}

// readHostRows explains node's host endpoints.
func readHostRows(ctx context.Context, cs kubernetes.Interface, calico *netpol.CalicoObjects, node string, warn io.Writer) ([]hostRow, error) {
	bad := func(err error) { fmt.Fprintf(warn, "warning: not enforced: %v\n", err) }
	pols, heps, _ := netpol.TranslateCalico(calico, bad)
	netpol.SortPolicies(pols)
	var rows []hostRow
	for _, h := range heps {
		if h.Node != node {
			continue
		}
		hp := netpol.ApplyingToHost(pols, h)
		r := hostRow{Name: h.Name, Interface: h.Interface, Labels: h.Labels.String(),
			PreDNAT: hostLabels(hp.PreDNAT), UntrackedIngress: hostLabels(hp.UntrackedIn), UntrackedEgress: hostLabels(hp.UntrackedOut),
			Ingress: hostLabels(hp.In), Egress: hostLabels(hp.Out), ForwardIngress: hostLabels(hp.FwdIn), ForwardEgress: hostLabels(hp.FwdOut)}
		for _, ip := range h.IPs {
			r.IPs = append(r.IPs, ip.String())
		}
		rows = append(rows, r)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Name < rows[j].Name })
	if len(rows) == 0 {
		if _, err := cs.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{}); err != nil {
			return nil, fmt.Errorf("node %s: %w", node, err)
		}
	}
	return rows, nil
}

func hostLabels(ps []*netpol.Policy) []string {
	out := []string{}
	for _, p := range ps {
		order := "-"
		if !math.IsInf(p.Order, 1) {
			order = fmt.Sprint(p.Order)
		}
		out = append(out, fmt.Sprintf("%s(%s)", policyLabel(p), order))
	}
	return out
}

func printHostRows(out io.Writer, rows []hostRow) {
	if len(rows) == 0 {
		fmt.Fprintln(out, "no host endpoints on this node: its interfaces are not protected")
	}
	for _, r := range rows {
		iface := r.Interface
		if iface == "" {
			iface = "no interface: not enforced"
		}
		fmt.Fprintf(out, "hostendpoint %s (%s, %s)\n", r.Name, iface, strings.Join(r.IPs, ","))
		for _, st := range []struct {
			name, none string
			ps         []string
		}{
			{"untracked ingress", "-", r.UntrackedIngress},
			{"pre-DNAT ingress", "-", r.PreDNAT},
			{"ingress", "deny (no policy)", r.Ingress},
			{"egress", "deny (no policy)", r.Egress},
			{"forwarded ingress", "allow (no applyOnForward policy)", r.ForwardIngress},
			{"forwarded egress", "allow (no applyOnForward policy)", r.ForwardEgress},
			{"untracked egress", "-", r.UntrackedEgress},
		} {
			list := st.none
			if len(st.ps) > 0 {
				list = strings.Join(st.ps, ", ")
			}
			fmt.Fprintf(out, "  %-18s %s\n", st.name+":", list)
		}
	}
	f := netpol.DefaultFailsafe
	fmt.Fprintf(out, "failsafe (never cut): in tcp %s, udp %s; out tcp %s, udp %s; protocols %s\n\n",
		ints(f.InTCP), ints(f.InUDP), ints(f.OutTCP), ints(f.OutUDP), strings.Join(f.Protocols, ","))
}

func ints(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ",")
}
