package routing

import (
	"net/netip"
	"slices"
	"sync"
)

// Peer is another node of the BGP mesh, or an external BGP router.
type Peer struct {
	Name string
	IP   netip.Addr
	// External marks a router outside the mesh (a BGPPeer): it learns
	// this node's own blocks and everything it sends is rejected.
	External bool
	// ASN of an external peer; 0 means the mesh's AS (iBGP).
	ASN uint32
}

// PeerSource lists the nodes of the mesh. The Router calls Peers after
// every notification on Changed (and on every resync), so an
// implementation only needs to signal that something changed; the lead
// agent feeds one from a Node informer.
type PeerSource interface {
	// Peers returns the current peers; the Router skips its own IP.
	Peers() []Peer
	// Changed receives a value whenever Peers may return something new.
	// Notifications may be coalesced.
	Changed() <-chan struct{}
}

// StaticPeers is a PeerSource whose list is set by its owner.
type StaticPeers struct {
	mu      sync.Mutex
	peers   []Peer
	changed chan struct{}
}

// NewStaticPeers returns a StaticPeers holding peers.
func NewStaticPeers(peers ...Peer) *StaticPeers {
	return &StaticPeers{peers: slices.Clone(peers), changed: make(chan struct{}, 1)}
}

// Peers implements PeerSource.
func (s *StaticPeers) Peers() []Peer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.peers)
}

// Changed implements PeerSource.
func (s *StaticPeers) Changed() <-chan struct{} { return s.changed }

// Set replaces the peer list and notifies the Router.
func (s *StaticPeers) Set(peers ...Peer) {
	s.mu.Lock()
	s.peers = slices.Clone(peers)
	s.mu.Unlock()
	select {
	case s.changed <- struct{}{}:
	default: // a notification is already pending
	}
}
