package main

import (
	"net"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/iks-dev/iks/tests/testutil"
)

func TestQueryAgainstTinyServer(t *testing.T) {
	s := testutil.StartDNSServer(t, nil, "127.0.0.1:0", map[string]string{"svc.example": "192.0.2.7"})
	c, err := net.Dial("udp", s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rcode, answers, err := query(c, "svc.example", 2*time.Second)
	if err != nil || rcode != dnsmessage.RCodeSuccess || len(answers) != 1 || answers[0] != "192.0.2.7" {
		t.Fatalf("known name: rcode %v answers %v err %v, want success 192.0.2.7", rcode, answers, err)
	}
	rcode, answers, err = query(c, "nope.example.", 2*time.Second)
	if err != nil || rcode != dnsmessage.RCodeNameError || len(answers) != 0 {
		t.Fatalf("unknown name: rcode %v answers %v err %v, want NXDOMAIN", rcode, answers, err)
	}
	if got := s.Queries("svc.example."); got != 1 {
		t.Errorf("server counted %d queries for svc.example, want 1", got)
	}
	if err := lookup([]string{"-server", s.Addr, "svc.example."}); err != nil {
		t.Errorf("lookup through the Go resolver: %v", err)
	}
	if err := lookup([]string{"-server", s.Addr, "nope.example."}); err == nil {
		t.Error("lookup of an unknown name succeeded")
	}
}

func TestBenchNameSpreadsOverNames(t *testing.T) {
	seen := map[string]bool{}
	for k := int64(1); k <= 10; k++ {
		seen[benchName("q%d.example", 4, k)] = true
	}
	if len(seen) != 4 || !seen["q0.example"] || !seen["q3.example"] {
		t.Errorf("spread 4 over 10 queries gave %v", seen)
	}
	if got := benchName("one.example", 1, 7); got != "one.example" {
		t.Errorf("spread 1: %q", got)
	}
}
