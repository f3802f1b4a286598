package apilb

import (
	"bufio"
	"context"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"testing"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
)

// backend answers every connection with its name.
func backend(t *testing.T, name string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte(name + "\n"))
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return ln
}

func ask(t *testing.T, l *LB) string {
	t.Helper()
	c, err := net.Dial("tcp", l.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	line, _ := bufio.NewReader(c).ReadString('\n')
	return line
}

func TestFailoverAndRecordedServers(t *testing.T) {
	a, b := backend(t, "a"), backend(t, "b")
	state := filepath.Join(t.TempDir(), "etc", "apiservers.json")
	l := New("127.0.0.1:0", a.Addr().String(), state, slog.New(slog.DiscardHandler))
	if err := l.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer l.Stop(context.Background())
	if got := ask(t, l); got != "a\n" {
		t.Fatalf("first server: %q", got)
	}
	l.SetServers([]string{b.Addr().String()})
	if got := l.Servers(); !slices.Contains(got, a.Addr().String()) || !slices.Contains(got, b.Addr().String()) {
		t.Fatalf("servers %v lack the --server one or the learnt one", got)
	}
	if got := ask(t, l); got != "a\n" {
		t.Errorf("moved off a working server: %q", got)
	}
	a.Close()
	if got := ask(t, l); got != "b\n" {
		t.Errorf("after the first server died: %q, want b", got)
	}
	// A restarted agent starts with the recorded list.
	l2 := New("127.0.0.1:0", a.Addr().String(), state, slog.New(slog.DiscardHandler))
	if got := l2.Servers(); !slices.Contains(got, b.Addr().String()) {
		t.Errorf("recorded servers not loaded: %v", got)
	}
}

// A server that leaves the API's list stays for retain (a missed lease
// under load), then goes; the --server one always stays.
func TestServersRetained(t *testing.T) {
	now := time.Unix(1000, 0)
	l := New("127.0.0.1:0", "10.0.0.1:6443", filepath.Join(t.TempDir(), "s.json"), slog.New(slog.DiscardHandler))
	l.now = func() time.Time { return now }
	l.SetServers([]string{"10.0.0.1:6443", "10.0.0.2:6443", "10.0.0.3:6443"})
	now = now.Add(10 * time.Second)
	l.SetServers([]string{"10.0.0.1:6443", "10.0.0.3:6443"})
	if got := l.Servers(); !slices.Equal(got, []string{"10.0.0.1:6443", "10.0.0.2:6443", "10.0.0.3:6443"}) {
		t.Errorf("after one refresh without 10.0.0.2: %v, want it kept", got)
	}
	now = now.Add(retain)
	l.SetServers([]string{"10.0.0.3:6443"})
	if got := l.Servers(); !slices.Equal(got, []string{"10.0.0.1:6443", "10.0.0.3:6443"}) {
		t.Errorf("after %s without 10.0.0.2: %v, want it gone and the --server one kept", retain, got)
	}
}

func TestServersFromEndpointSlices(t *testing.T) {
	port, name, f := int32(6443), "https", false
	s := discoveryv1.EndpointSlice{Ports: []discoveryv1.EndpointPort{{Name: &name, Port: &port}},
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.1"}}, {Addresses: []string{"10.0.0.2"},
			Conditions: discoveryv1.EndpointConditions{Ready: &f}}}}
	if got := Servers([]discoveryv1.EndpointSlice{s}); !slices.Equal(got, []string{"10.0.0.1:6443"}) {
		t.Errorf("got %v", got)
	}
}
