package lb

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/iks-dev/iks/internal/lbpool"
)

func subnets(t *testing.T) []lbpool.Subnet {
	t.Helper()
	pub, err := lbpool.Parse(lbpool.Public, "", "10.95.1.64/29")
	if err != nil {
		t.Fatal(err)
	}
	priv, err := lbpool.Parse(lbpool.Private, "", "10.95.2.0/28")
	if err != nil {
		t.Fatal(err)
	}
	return []lbpool.Subnet{pub, priv}
}

func reason(err error) string {
	var ae *AllocError
	if errors.As(err, &ae) {
		return ae.Reason
	}
	return ""
}

func TestAllocatePublic29GivesFourThenExhausts(t *testing.T) {
	a := NewAllocator(subnets(t))
	var got []string
	for i := range 4 {
		ip, err := a.Allocate(fmt.Sprintf("default/s%d", i), Request{Kind: lbpool.Public})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ip.String())
	}
	if strings.Join(got, " ") != "10.95.1.68 10.95.1.69 10.95.1.70 10.95.1.71" {
		t.Fatalf("a /29 gave %v, want .68-.71 (3 reserved + 1 ALB skipped)", got)
	}
	_, err := a.Allocate("default/s4", Request{Kind: lbpool.Public})
	if reason(err) != ReasonExhausted || !strings.Contains(err.Error(), "exhausted") || !strings.Contains(err.Error(), "--portable-public-subnet") {
		t.Fatalf("5th public service: %v, want an exhausted error saying what to do", err)
	}
	// Keeping an allocation is idempotent, and freeing one lets the next in.
	if ip, err := a.Allocate("default/s1", Request{Kind: lbpool.Public}); err != nil || ip.String() != "10.95.1.69" {
		t.Fatalf("re-allocate s1 = %s %v, want its own 10.95.1.69", ip, err)
	}
	if !a.Release("default/s2") {
		t.Fatal("release s2 reported nothing held")
	}
	if ip, err := a.Allocate("default/s4", Request{Kind: lbpool.Public}); err != nil || ip.String() != "10.95.1.70" {
		t.Fatalf("after a release: %s %v, want the freed 10.95.1.70", ip, err)
	}
}

func TestAllocatePrivate28(t *testing.T) {
	a := NewAllocator(subnets(t))
	n := 0
	for {
		ip, err := a.Allocate(fmt.Sprintf("p/%d", n), Request{Kind: lbpool.Private, KindSet: true})
		if err != nil {
			if reason(err) != ReasonExhausted {
				t.Fatal(err)
			}
			break
		}
		if n == 0 && ip.String() != "10.95.2.4" {
			t.Errorf("first private IP %s, want 10.95.2.4", ip)
		}
		n++
	}
	if n != 12 {
		t.Fatalf("a /28 gave %d service IPs, want 12", n)
	}
	if len(a.Free(lbpool.Public)) != 4 {
		t.Error("private allocations used public IPs")
	}
}

func TestRequestedIP(t *testing.T) {
	a := NewAllocator(subnets(t))
	ip := netip.MustParseAddr("10.95.1.70")
	if got, err := a.Allocate("default/want", Request{Kind: lbpool.Public, IP: ip}); err != nil || got != ip {
		t.Fatalf("requested %s: got %s %v", ip, got, err)
	}
	cases := []struct {
		req    Request
		reason string
		want   []string
	}{
		{Request{IP: netip.MustParseAddr("10.95.1.70"), Kind: lbpool.Public}, ReasonTaken, []string{"10.95.1.70", "default/want", "10.95.1.68, 10.95.1.69, 10.95.1.71"}},
		{Request{IP: netip.MustParseAddr("192.0.2.1"), Kind: lbpool.Public}, ReasonNotInPool, []string{"192.0.2.1 is outside every portable subnet", "10.95.1.68"}},
		{Request{IP: netip.MustParseAddr("10.95.1.65"), Kind: lbpool.Public}, ReasonReserved, []string{"10.95.1.65 is reserved for network functions"}},
		{Request{IP: netip.MustParseAddr("10.95.1.67"), Kind: lbpool.Public}, ReasonReserved, []string{"kept for the subnet's ALB"}},
		{Request{IP: netip.MustParseAddr("10.95.2.5"), Kind: lbpool.Public, KindSet: true}, ReasonWrongPool, []string{"10.95.2.5 is in the private subnet"}},
	}
	for _, c := range cases {
		_, err := a.Allocate("default/other", c.req)
		if reason(err) != c.reason {
			t.Errorf("%+v: %v, want reason %s", c.req, err, c.reason)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%+v: %q lacks %q", c.req, err, w)
			}
		}
	}
	// Without the type annotation a requested private IP picks the private pool.
	if got, err := a.Allocate("default/p", Request{Kind: lbpool.Public, IP: netip.MustParseAddr("10.95.2.9")}); err != nil || got.String() != "10.95.2.9" {
		t.Fatalf("private IP without annotation: %s %v", got, err)
	}
	// A failed change keeps the current allocation.
	if _, err := a.Allocate("default/p", Request{IP: netip.MustParseAddr("10.95.1.70")}); err == nil {
		t.Fatal("taken IP given")
	}
	if cur, ok := a.Lookup("default/p"); !ok || cur.String() != "10.95.2.9" {
		t.Fatalf("failed change lost the allocation: %s %v", cur, ok)
	}
}

func TestRebuildAfterRestart(t *testing.T) {
	before := NewAllocator(subnets(t))
	held := map[string]netip.Addr{}
	for _, k := range []string{"a/x", "b/y", "c/z"} {
		ip, err := before.Allocate(k, Request{Kind: lbpool.Public})
		if err != nil {
			t.Fatal(err)
		}
		held[k] = ip
	}
	before.Release("a/x") // a hole: .68 free, .69 and .70 held
	delete(held, "a/x")

	after := NewAllocator(subnets(t)) // a restarted server, fed from Services' status
	for k, ip := range held {
		if err := after.Assign(k, ip); err != nil {
			t.Fatal(err)
		}
	}
	for k, ip := range held {
		if got, err := after.Allocate(k, Request{Kind: lbpool.Public}); err != nil || got != ip {
			t.Errorf("%s moved from %s to %s (%v) across a restart", k, ip, got, err)
		}
	}
	if ip, err := after.Allocate("d/new", Request{Kind: lbpool.Public}); err != nil || ip.String() != "10.95.1.68" {
		t.Errorf("new service after rebuild got %s %v, want the free 10.95.1.68", ip, err)
	}
	if err := after.Assign("e/dup", held["b/y"]); reason(err) != ReasonTaken {
		t.Errorf("duplicate status IP assigned: %v", err)
	}
	if err := after.Assign("e/dup", netip.MustParseAddr("10.95.1.64")); reason(err) != ReasonNotInPool {
		t.Errorf("reserved status IP assigned: %v", err)
	}
}

func TestNoPoolOfKind(t *testing.T) {
	pub, _ := lbpool.Parse(lbpool.Public, "", "10.95.1.64/29")
	a := NewAllocator([]lbpool.Subnet{pub})
	_, err := a.Allocate("x/y", Request{Kind: lbpool.Private, KindSet: true})
	if reason(err) != ReasonNoPool || !strings.Contains(err.Error(), "--portable-private-subnet") {
		t.Fatalf("private service without private subnet: %v", err)
	}
}

func TestALBServiceTakesTheALBIP(t *testing.T) {
	a := NewAllocator(subnets(t))
	albIP := netip.MustParseAddr("10.95.1.67")
	if _, err := a.Allocate("default/x", Request{IP: albIP}); err == nil {
		t.Fatal("an ordinary service got the ALB IP")
	}
	ip, err := a.Allocate("kube-system/public-alb1", Request{IP: albIP, ALB: true})
	if err != nil || ip != albIP {
		t.Fatalf("ALB service: %v %v, want %s", ip, err, albIP)
	}
	// A restarted server keeps it from the Service's status.
	b := NewAllocator(subnets(t))
	if err := b.Assign("kube-system/public-alb1", albIP); err != nil {
		t.Errorf("rebuild of the ALB IP: %v", err)
	}
	if a.Release("kube-system/public-alb1"); len(a.Free(lbpool.Public)) != 4 {
		t.Errorf("the ALB IP must never count among the free service IPs: %v", a.Free(lbpool.Public))
	}
}
