package testutil

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// DNSServer is a tiny authoritative UDP DNS server run by the test
// process, standing in for a node's upstream resolver: it answers A
// queries for its records and NXDOMAIN for every other name.
type DNSServer struct {
	Addr    string // host:port it listens on
	records map[string]netip.Addr
	pc      net.PacketConn
	wg      sync.WaitGroup

	mu      sync.Mutex
	queries map[string]int
}

// StartDNSServer listens on addr (e.g. "10.86.0.1:53") inside ns (nil: the
// test's own namespace) and serves records (name → IPv4; names without
// the trailing dot; "*.zone" answers every name directly under zone)
// until the test ends.
func StartDNSServer(t testing.TB, ns *Netns, addr string, records map[string]string) *DNSServer {
	t.Helper()
	s := &DNSServer{records: map[string]netip.Addr{}, queries: map[string]int{}}
	for name, ip := range records {
		s.records[fqdn(name)] = netip.MustParseAddr(ip)
	}
	var err error
	if ns != nil {
		s.pc, err = ns.ListenPacket("udp4", addr)
	} else {
		s.pc, err = net.ListenPacket("udp4", addr)
	}
	if err != nil {
		t.Fatalf("DNS server on %s: %v", addr, err)
	}
	s.Addr = s.pc.LocalAddr().String()
	s.wg.Add(1)
	go s.serve()
	t.Cleanup(func() { _ = s.pc.Close(); s.wg.Wait() })
	return s
}

// Queries returns how many queries for name (any type) arrived.
func (s *DNSServer) Queries(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queries[fqdn(name)]
}

func fqdn(name string) string { return strings.ToLower(strings.TrimSuffix(name, ".")) + "." }

func (s *DNSServer) serve() {
	defer s.wg.Done()
	buf := make([]byte, 1500)
	for {
		n, from, err := s.pc.ReadFrom(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			continue
		}
		if resp, ok := s.answer(buf[:n]); ok {
			_, _ = s.pc.WriteTo(resp, from)
		}
	}
}

// answer builds the response to one query; malformed queries are dropped.
func (s *DNSServer) answer(query []byte) ([]byte, bool) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil || h.Response {
		return nil, false
	}
	q, err := p.Question()
	if err != nil {
		return nil, false
	}
	name := strings.ToLower(q.Name.String())
	s.mu.Lock()
	s.queries[name]++
	s.mu.Unlock()
	ip, known := s.records[name]
	if _, parent, ok := strings.Cut(name, "."); !known && ok {
		ip, known = s.records["*."+parent] // a wildcard record
	}
	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired,
		RecursionAvailable: true, RCode: dnsmessage.RCodeSuccess}
	if !known {
		rh.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, rh)
	b.EnableCompression()
	if b.StartQuestions() != nil || b.Question(q) != nil || b.StartAnswers() != nil {
		return nil, false
	}
	if known && q.Type == dnsmessage.TypeA && q.Class == dnsmessage.ClassINET {
		err := b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: 5},
			dnsmessage.AResource{A: ip.As4()})
		if err != nil {
			return nil, false
		}
	}
	out, err := b.Finish()
	return out, err == nil
}

// DNSQuery sends one A query for name to server ("IP:53") over conn's
// network (a UDP socket made by the caller, e.g. inside a node's
// namespace) and returns the answer's rcode and IPv4 addresses.
func DNSQuery(conn net.Conn, name string, timeout time.Duration) (dnsmessage.RCode, []string, error) {
	n, err := dnsmessage.NewName(strings.TrimSuffix(name, ".") + ".")
	if err != nil {
		return 0, nil, err
	}
	id := uint16(time.Now().UnixNano())
	msg := dnsmessage.Message{Header: dnsmessage.Header{ID: id, RecursionDesired: true},
		Questions: []dnsmessage.Question{{Name: n, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET}}}
	b, err := msg.Pack()
	if err != nil {
		return 0, nil, err
	}
	if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		return 0, nil, err
	}
	if _, err := conn.Write(b); err != nil {
		return 0, nil, err
	}
	buf := make([]byte, 4096)
	for {
		k, err := conn.Read(buf)
		if err != nil {
			return 0, nil, err
		}
		var resp dnsmessage.Message
		if resp.Unpack(buf[:k]) != nil || resp.ID != id {
			continue
		}
		var ips []string
		for _, a := range resp.Answers {
			if r, ok := a.Body.(*dnsmessage.AResource); ok {
				ips = append(ips, netip.AddrFrom4(r.A).String())
			}
		}
		return resp.RCode, ips, nil
	}
}
