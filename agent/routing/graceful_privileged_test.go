package routing

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iks-dev/iks/tests/testutil"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// routeSampler checks every 10ms that a namespace has a proto-81 route to
// dst and counts the samples where it was missing.
type routeSampler struct {
	samples, missing atomic.Int64
	stop             chan struct{}
	wg               sync.WaitGroup
}

func sampleRoute(t *testing.T, ns, dst string) *routeSampler {
	t.Helper()
	h, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatal(err)
	}
	nl, err := netlink.NewHandleAt(h)
	h.Close()
	if err != nil {
		t.Fatal(err)
	}
	_, want, _ := net.ParseCIDR(dst)
	s := &routeSampler{stop: make(chan struct{})}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer nl.Close()
		for {
			select {
			case <-s.stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			rs, err := nl.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Dst: want, Protocol: RouteProtocol},
				netlink.RT_FILTER_DST|netlink.RT_FILTER_PROTOCOL)
			s.samples.Add(1)
			if err != nil || len(rs) == 0 {
				s.missing.Add(1)
			}
		}
	}()
	return s
}

// end stops sampling and returns (samples, missing).
func (s *routeSampler) end() (int64, int64) {
	close(s.stop)
	s.wg.Wait()
	return s.samples.Load(), s.missing.Load()
}

// peerRoute returns n's status entry for dst.
func peerRoute(n *testNode, dst string) (RouteStatus, error) {
	st, err := n.readStatus()
	if err != nil {
		return RouteStatus{}, err
	}
	for _, r := range st.Routes {
		if r.Dst.String() == dst {
			return r, nil
		}
	}
	return RouteStatus{}, fmt.Errorf("no route to %s in %s's status (%d routes)", dst, n.name, len(st.Routes))
}

// TestGracefulRestart: while n2's speaker is stopped (SIGTERM) or killed
// (SIGKILL), n1 keeps n2's block in the kernel, marked stale in its
// status, without a single sample missing; after a kill the block is
// removed once the restart time has passed; a peer removed from the peer
// list (its Node deleted) is withdrawn at once.
func TestGracefulRestart(t *testing.T) {
	testutil.RequireNetns(t)
	m := newMeshNet(t)
	pfx, addr := netip.MustParsePrefix, netip.MustParseAddr
	const gr = 12 * time.Second
	const block2 = "172.31.2.0/24"
	peers := []Peer{{Name: "n1", IP: addr("10.123.1.11")}, {Name: "n2", IP: addr("10.123.1.12")}}
	n1cfg := helperConfig{Name: "n1", IP: addr("10.123.1.11"), Subnet: pfx("10.123.1.0/24"), Blocks: []netip.Prefix{pfx("172.31.1.0/24")},
		Peers: peers, StaleGrace: time.Minute, GR: gr, PeersFile: filepath.Join(t.TempDir(), "peers.json")}
	n2cfg := helperConfig{Name: "n2", IP: addr("10.123.1.12"), Subnet: pfx("10.123.1.0/24"), Blocks: []netip.Prefix{pfx(block2)},
		Peers: peers, StaleGrace: time.Minute, GR: gr}
	n1 := startNode(t, m.n1, n1cfg)
	n2 := startNode(t, m.n2, n2cfg)
	learned := func() error {
		if err := wantRoute(t, m.n1, block2, "10.123.1.12", "eth0", false); err != nil {
			return err
		}
		r, err := peerRoute(n1, block2)
		if err == nil && r.Stale {
			err = fmt.Errorf("route %s still stale", block2)
		}
		return err
	}
	waitFor(t, 30*time.Second, "n1 learns n2's block", learned)
	st, _ := n1.readStatus()
	if len(st.Peers) != 1 || !st.Peers[0].GracefulRestart || st.GracefulRestartTime != gr {
		t.Fatalf("graceful restart not negotiated: %+v", st)
	}

	outer := t // nodes started in subtests live as long as the test
	t.Run("stop and start", func(t *testing.T) {
		s := sampleRoute(t, m.n1, block2)
		if err := n2.stop(); err != nil {
			t.Fatalf("stop n2: %v", err)
		}
		waitFor(t, 3*time.Second, "n1 marks n2's block stale", func() error {
			r, err := peerRoute(n1, block2)
			if err == nil && !r.Stale {
				err = fmt.Errorf("route %s not stale after n2 stopped", block2)
			}
			return err
		})
		n2 = startNode(outer, m.n2, n2cfg)
		waitFor(t, 30*time.Second, "n1 relearns n2's block (not stale)", learned)
		if n, miss := s.end(); miss != 0 || n < 50 {
			t.Fatalf("route %s missing in %d of %d samples across n2's restart", block2, miss, n)
		} else {
			t.Logf("route present in all %d samples across a stop/start", n)
		}
	})

	t.Run("kill -9, then the restart time passes", func(t *testing.T) {
		s := sampleRoute(t, m.n1, block2)
		killed := time.Now()
		n2.kill()
		waitFor(t, 3*time.Second, "n1 marks n2's block stale", func() error {
			r, err := peerRoute(n1, block2)
			if err == nil && !r.Stale {
				err = fmt.Errorf("route %s not stale after n2 was killed", block2)
			}
			return err
		})
		// Sample until just before the restart time ends.
		for time.Since(killed) < gr-time.Second {
			time.Sleep(50 * time.Millisecond)
		}
		if n, miss := s.end(); miss != 0 || n < 50 {
			t.Fatalf("route %s missing in %d of %d samples within the restart time", block2, miss, n)
		}
		waitFor(t, gr+10*time.Second, "n1 drops n2's block after the restart time", func() error {
			if _, ok := ownedRoutesIn(t, m.n1)[block2]; ok {
				return fmt.Errorf("n1 still routes %s %s after the kill", block2, time.Since(killed).Round(time.Millisecond))
			}
			return nil
		})
		if d := time.Since(killed); d < gr {
			t.Fatalf("route dropped after %s, before the restart time %s", d, gr)
		}
		t.Logf("route dropped %s after the kill (restart time %s)", time.Since(killed).Round(100*time.Millisecond), gr)
	})

	t.Run("deleted node is withdrawn at once", func(t *testing.T) {
		n2 = startNode(outer, m.n2, n2cfg)
		waitFor(t, 30*time.Second, "n1 relearns n2's block", learned)
		if err := n2.stop(); err != nil { // a graceful stop: n1 would keep the route
			t.Fatal(err)
		}
		waitFor(t, 3*time.Second, "n1 marks n2's block stale", func() error {
			r, err := peerRoute(n1, block2)
			if err == nil && !r.Stale {
				err = fmt.Errorf("not stale")
			}
			return err
		})
		deleted := time.Now()
		n1.setPeers(t, n1cfg.PeersFile, peers[0]) // n2's Node deleted
		waitFor(t, 3*time.Second, "n1 drops n2's block when its Node is deleted", func() error {
			if _, ok := ownedRoutesIn(t, m.n1)[block2]; ok {
				return fmt.Errorf("n1 still routes %s", block2)
			}
			return nil
		})
		t.Logf("route withdrawn %s after the peer was removed", time.Since(deleted).Round(time.Millisecond))
	})
}
