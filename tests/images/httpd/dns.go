package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// lookup resolves a name like an application does (Go resolver: search
// list and ndots from /etc/resolv.conf) and prints one IPv4 per line.
// -server sends the queries to that address instead of the nameservers.
func lookup(args []string) error {
	fs := flag.NewFlagSet("lookup", flag.ContinueOnError)
	server := fs.String("server", "", "DNS server host:port (default: /etc/resolv.conf nameservers)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: httpd lookup [-server HOST:PORT] NAME")
	}
	r := &net.Resolver{PreferGo: true}
	if *server != "" {
		r.Dial = func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, *server)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ips, err := r.LookupNetIP(ctx, "ip4", fs.Arg(0))
	if err != nil {
		return err
	}
	for _, ip := range ips {
		fmt.Println(ip)
	}
	return nil
}

// dig sends one A query for the exact name (no search list) and prints
// "rcode=NAME" and an "A ADDRESS" line per answer.
func dig(args []string) error {
	fs := flag.NewFlagSet("dig", flag.ContinueOnError)
	server := fs.String("server", "", "DNS server host:port (default: the first nameserver in /etc/resolv.conf)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: httpd dig [-server HOST:PORT] NAME")
	}
	addr, err := serverAddr(*server)
	if err != nil {
		return err
	}
	c, err := net.Dial("udp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	rcode, answers, err := query(c, fs.Arg(0), 5*time.Second)
	if err != nil {
		return err
	}
	fmt.Printf("rcode=%s\n", strings.TrimPrefix(rcode.String(), "RCode"))
	for _, a := range answers {
		fmt.Printf("A %s\n", a)
	}
	return nil
}

// dnsbench sends A queries for one name (or, with -spread N, for N names
// made from a -name holding %d) from -c concurrent clients, each waiting
// for its answer, until -duration or -max queries, and prints
// "queries=N errors=N seconds=S qps=Q".
func dnsbench(args []string) error {
	fs := flag.NewFlagSet("dnsbench", flag.ContinueOnError)
	server := fs.String("server", "", "DNS server host:port (default: the first nameserver in /etc/resolv.conf)")
	name := fs.String("name", "", "name to query (required)")
	conc := fs.Int("c", 4, "concurrent clients")
	duration := fs.Duration("duration", 3*time.Second, "how long to run (at most 60s)")
	limit := fs.Int64("max", 1_000_000, "stop after this many queries")
	spread := fs.Int64("spread", 1, "query this many different names: -name must hold %d, replaced by 0..spread-1 in turn")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *name == "" || *conc < 1 || *duration <= 0 || *duration > time.Minute || *spread < 1 || (*spread > 1) != strings.Contains(*name, "%d") {
		return errors.New("usage: httpd dnsbench -name NAME [-spread N, with %d in NAME] [-server HOST:PORT] [-c N] [-duration D<=60s] [-max N]")
	}
	addr, err := serverAddr(*server)
	if err != nil {
		return err
	}
	var sent, failed atomic.Int64
	deadline := time.Now().Add(*duration)
	t0 := time.Now()
	var wg sync.WaitGroup
	for range *conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("udp", addr)
			if err != nil {
				failed.Add(1)
				return
			}
			defer c.Close()
			for k := sent.Add(1); time.Now().Before(deadline) && k <= *limit; k = sent.Add(1) {
				if rcode, _, err := query(c, benchName(*name, *spread, k), time.Second); err != nil || rcode != dnsmessage.RCodeSuccess {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	secs := time.Since(t0).Seconds()
	n := min(sent.Load(), *limit)
	fmt.Printf("queries=%d errors=%d seconds=%.2f qps=%.0f\n", n, failed.Load(), secs, float64(n-failed.Load())/secs)
	return nil
}

// benchName is the k-th query's name: name itself, or name with %d
// replaced by k modulo spread.
func benchName(name string, spread, k int64) string {
	if spread <= 1 {
		return name
	}
	return strings.Replace(name, "%d", strconv.FormatInt(k%spread, 10), 1)
}

// query sends one A query on c and waits for the answer with its ID.
func query(c net.Conn, name string, timeout time.Duration) (dnsmessage.RCode, []string, error) {
	n, err := dnsmessage.NewName(strings.TrimSuffix(name, ".") + ".")
	if err != nil {
		return 0, nil, fmt.Errorf("bad name %q: %w", name, err)
	}
	id := uint16(rand.Uint32())
	msg := dnsmessage.Message{
		Header:    dnsmessage.Header{ID: id, RecursionDesired: true},
		Questions: []dnsmessage.Question{{Name: n, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET}},
	}
	b, err := msg.Pack()
	if err != nil {
		return 0, nil, err
	}
	if err := c.SetDeadline(time.Now().Add(timeout)); err != nil {
		return 0, nil, err
	}
	if _, err := c.Write(b); err != nil {
		return 0, nil, err
	}
	buf := make([]byte, 4096)
	for {
		k, err := c.Read(buf)
		if err != nil {
			return 0, nil, err
		}
		var resp dnsmessage.Message
		if err := resp.Unpack(buf[:k]); err != nil || resp.ID != id {
			continue // a late answer to an earlier, timed-out query
		}
		var out []string
		for _, a := range resp.Answers {
			if r, ok := a.Body.(*dnsmessage.AResource); ok {
				out = append(out, net.IP(r.A[:]).String())
			}
		}
		return resp.RCode, out, nil
	}
}

// serverAddr returns addr, or the first nameserver of /etc/resolv.conf
// with port 53.
func serverAddr(addr string) (string, error) {
	if addr != "" {
		return addr, nil
	}
	f, err := os.Open("/etc/resolv.conf")
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) >= 2 && fields[0] == "nameserver" {
			return net.JoinHostPort(fields[1], "53"), nil
		}
	}
	return "", errors.New("no nameserver in /etc/resolv.conf: pass -server")
}
