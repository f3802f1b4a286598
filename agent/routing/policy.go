package routing

import (
	"context"
	"fmt"
	"net/netip"

	api "github.com/osrg/gobgp/v3/api"
)

// Names of the gobgp policy objects guarding external peers.
const (
	externalSet    = "iks-external"
	importPolicy   = "iks-external-import"
	exportPolicy   = "iks-external-export"
	placeholderNbr = "0.0.0.0/32" // an empty neighbour set would match every neighbour
)

// installPolicies sets the global import and export policies: nothing an
// external peer sends is accepted (a ToR's default or covering route must
// never replace the node's uplink), and external peers learn only this
// node's own blocks, never routes learned from the mesh.
func (r *Router) installPolicies(ctx context.Context) error {
	if err := r.bgp.AddDefinedSet(ctx, &api.AddDefinedSetRequest{DefinedSet: &api.DefinedSet{
		DefinedType: api.DefinedType_NEIGHBOR, Name: externalSet, List: []string{placeholderNbr},
	}}); err != nil {
		return fmt.Errorf("routing: define neighbour set %s: %w", externalSet, err)
	}
	fromExternal := func(rt api.Conditions_RouteType) *api.Conditions {
		return &api.Conditions{NeighborSet: &api.MatchSet{Type: api.MatchSet_ANY, Name: externalSet}, RouteType: rt}
	}
	reject := &api.Actions{RouteAction: api.RouteAction_REJECT}
	policies := []*api.Policy{
		{Name: importPolicy, Statements: []*api.Statement{
			{Name: importPolicy + "-reject", Conditions: fromExternal(api.Conditions_ROUTE_TYPE_NONE), Actions: reject},
		}},
		{Name: exportPolicy, Statements: []*api.Statement{
			{Name: exportPolicy + "-internal", Conditions: fromExternal(api.Conditions_ROUTE_TYPE_INTERNAL), Actions: reject},
			{Name: exportPolicy + "-external", Conditions: fromExternal(api.Conditions_ROUTE_TYPE_EXTERNAL), Actions: reject},
		}},
	}
	for _, p := range policies {
		if err := r.bgp.AddPolicy(ctx, &api.AddPolicyRequest{Policy: p, ReferExistingStatements: false}); err != nil {
			return fmt.Errorf("routing: add BGP policy %s: %w", p.Name, err)
		}
	}
	for dir, p := range map[api.PolicyDirection]string{api.PolicyDirection_IMPORT: importPolicy, api.PolicyDirection_EXPORT: exportPolicy} {
		if err := r.bgp.AddPolicyAssignment(ctx, &api.AddPolicyAssignmentRequest{Assignment: &api.PolicyAssignment{
			Name: "global", Direction: dir, Policies: []*api.Policy{{Name: p}}, DefaultAction: api.RouteAction_ACCEPT,
		}}); err != nil {
			return fmt.Errorf("routing: assign BGP policy %s: %w", p, err)
		}
	}
	return nil
}

// syncExternalSet puts the external peers of want into the neighbour set
// the policies match, before any session with them is opened. The set is
// changed in place (gobgp's policy conditions keep a reference to it).
func (r *Router) syncExternalSet(ctx context.Context, want map[netip.Addr]Peer) {
	next := map[string]bool{}
	for ip, p := range want {
		if p.External {
			next[netip.PrefixFrom(ip, 32).String()] = true
		}
	}
	var add, del []string
	for n := range next {
		if !r.extSet[n] {
			add = append(add, n)
		}
	}
	for n := range r.extSet {
		if !next[n] {
			del = append(del, n)
		}
	}
	set := func(list []string) *api.DefinedSet {
		return &api.DefinedSet{DefinedType: api.DefinedType_NEIGHBOR, Name: externalSet, List: list}
	}
	if len(add) > 0 {
		if err := r.bgp.AddDefinedSet(ctx, &api.AddDefinedSetRequest{DefinedSet: set(add)}); err != nil {
			r.log.Warn("cannot add external peers to the neighbour set", "peers", add, "err", err)
			return
		}
	}
	if len(del) > 0 {
		if err := r.bgp.DeleteDefinedSet(ctx, &api.DeleteDefinedSetRequest{DefinedSet: set(del)}); err != nil {
			r.log.Warn("cannot remove external peers from the neighbour set", "peers", del, "err", err)
			return
		}
	}
	r.extSet = next
}

// isExternal reports whether ip is a configured external peer.
func (r *Router) isExternal(ip netip.Addr) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.peers[ip].External
}
