package testutil

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// ClearText counts, in a remote VPN site's gateway namespace, the
// packets that arrive from the external network (on its interface dev)
// addressed to the LAN behind it: plain IP, not the ESP-in-UDP and IKE
// sent to the gateway's own address. That is what a node would send in
// clear text toward the remote subnet with neither a tunnel nor a
// blackhole route. So that such a packet really arrives there (and is
// not dropped by the router for want of a route, which would make the
// count vacuous), the harness router routes the LAN to the gateway's
// external address while the counter exists, as a network between the
// sites that would deliver it would.
type ClearText struct {
	*NftCounter
	// Router counts the router's own packets toward the LAN (see
	// NewClearText), not counted as clear text.
	Router *NftCounter
	nw     *Network
	gw     *Netns
	lan    string
}

// NftCounter is a packet counter in a test namespace: table
// "iks-test-<name>" with one rule at the prerouting hook (before
// anything else) counting what match matches and recording each
// packet's source address and protocol in a set (Seen). It goes at
// cleanup.
type NftCounter struct {
	t     testing.TB
	ns    *Netns
	table string
}

var nftPackets = regexp.MustCompile(`packets (\d+) bytes (\d+)`)

// NewNftCounter installs the counter.
func NewNftCounter(t testing.TB, ns *Netns, name, match string) *NftCounter {
	t.Helper()
	c := &NftCounter{t: t, ns: ns, table: "iks-test-" + name}
	script := fmt.Sprintf(`table ip %s {
	counter n {}
	set seen { type ipv4_addr . inet_proto; flags dynamic; size 4096; }
	chain pre {
		type filter hook prerouting priority -400; policy accept;
		%s counter name n add @seen { ip saddr . meta l4proto }
	}
}
`, c.table, match)
	f := filepath.Join(t.TempDir(), c.table+".nft")
	if err := os.WriteFile(f, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := ns.Exec("nft", "-f", f); err != nil {
		t.Fatalf("counter %s in %s: %v: %s", c.table, ns.Name, err, out)
	}
	t.Cleanup(func() { _, _ = ns.Exec("nft", "delete", "table", "ip", c.table) })
	return c
}

// SentToward counts, in a node's namespace, the packets its pods send
// toward lan (arriving from their host-side veths, "cali*"): the
// denominator of a clear-text count.
func SentToward(t testing.TB, node *Netns, lan string) *NftCounter {
	t.Helper()
	return NewNftCounter(t, node, "sent", fmt.Sprintf(`iifname "cali*" ip daddr %s`, lan))
}

// NewClearText installs the counter in gw (on the external subnet
// "ext") and the router's route to lan via gwIP; both go at cleanup.
// The router's own ICMP errors are not counted: once the remote side has
// no SA, the remote LAN's answers leave in clear toward the router, which
// has no route to the cluster's pod range and sends "unreachable" back
// to the LAN through the route added here; they are the harness's
// answers to the remote site, not clear text from the cluster.
func NewClearText(t testing.TB, nw *Network, gw *Netns, gwIP, dev, lan string) *ClearText {
	t.Helper()
	c := &ClearText{NftCounter: NewNftCounter(t, gw, "cleartext",
		fmt.Sprintf(`iifname %q ip saddr != %s ip daddr %s`, dev, nw.Gateway("ext"), lan)),
		Router: NewNftCounter(t, gw, "cleartext-rt", fmt.Sprintf(`iifname %q ip saddr %s ip daddr %s`, dev, nw.Gateway("ext"), lan)),
		nw:     nw, gw: gw, lan: lan}
	if out, err := nw.Router.Exec("ip", "route", "replace", lan, "via", gwIP); err != nil {
		t.Fatalf("router route to %s: %v: %s", lan, err, out)
	}
	t.Cleanup(func() { _, _ = nw.Router.Exec("ip", "route", "del", lan, "via", gwIP) })
	return c
}

// Packets is the count so far.
func (c *NftCounter) Packets() int {
	c.t.Helper()
	return c.parse(c.ns.Exec("nft", "list", "counter", "ip", c.table, "n"))
}

// Reset returns the count so far and zeroes it.
func (c *NftCounter) Reset() int {
	c.t.Helper()
	return c.parse(c.ns.Exec("nft", "reset", "counter", "ip", c.table, "n"))
}

// Seen lists the source address and protocol of the packets counted
// (nft's notation), empty when none.
func (c *NftCounter) Seen() string {
	c.t.Helper()
	out, err := c.ns.Exec("nft", "list", "set", "ip", c.table, "seen")
	if err != nil {
		c.t.Fatalf("list %s seen in %s: %v", c.table, c.ns.Name, err)
	}
	i := strings.Index(out, "elements = {")
	if i < 0 {
		return ""
	}
	out = out[i+len("elements = {"):]
	if j := strings.Index(out, "}"); j >= 0 {
		out = out[:j]
	}
	return strings.Join(strings.Fields(out), " ")
}

// Flush empties the set of Seen.
func (c *NftCounter) Flush() {
	c.t.Helper()
	if out, err := c.ns.Exec("nft", "flush", "set", "ip", c.table, "seen"); err != nil {
		c.t.Fatalf("flush %s seen in %s: %v: %s", c.table, c.ns.Name, err, out)
	}
}

func (c *NftCounter) parse(out string, err error) int {
	c.t.Helper()
	if err != nil {
		c.t.Fatalf("read counter %s in %s: %v", c.table, c.ns.Name, err)
	}
	m := nftPackets.FindStringSubmatch(out)
	if m == nil {
		c.t.Fatalf("counter %s in %s: no packet count in %q", c.table, c.ns.Name, out)
	}
	n, err := strconv.Atoi(m[1])
	if err != nil {
		c.t.Fatal(err)
	}
	return n
}

// Control is the positive control: from a scratch namespace on subnet
// (host h; router-side link peer), whose only route is the default via
// the harness router, as a node's, it sends one UDP datagram in clear
// text to dst (an address in the LAN, port 9) and waits until the
// counter has seen it. It returns the count the datagram produced and
// zeroes the counter. The namespace stays until cleanup.
func (c *ClearText) Control(subnet string, h int, peer, dst string) int {
	c.t.Helper()
	before := c.Packets()
	ns := NewNetns(c.t, "iks-"+c.nw.ID+"-ct")
	c.nw.Attach(ns, subnet, c.nw.IP(subnet, h), peer)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := ns.DialContext(ctx, "udp", dst+":9")
	if err != nil {
		c.t.Fatalf("clear-text control: %v", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("clear-text control")); err != nil {
		c.t.Fatalf("clear-text control: send: %v", err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if n := c.Packets() - before; n > 0 {
			c.Reset()
			c.Flush()
			return n
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("clear-text control: the counter in %s did not see a UDP datagram sent in clear text from %s to %s", c.gw.Name, ns.Name, dst)
		}
	}
}
