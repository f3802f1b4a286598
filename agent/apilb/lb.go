// Package apilb is the agent's client-side load balancer for the
// apiservers (as k3s's agent load balancer): a TCP proxy on loopback that
// kubelet and every agent component reach the API through. Each new
// connection goes to the server that last worked, else to the next one
// that accepts; TLS is end to end (the apiserver certificates carry
// 127.0.0.1). The server list starts with the --server address, is learnt
// from the kubernetes Service's EndpointSlices and kept in a file, so an
// agent restarted while its first server is down still finds the others.
package apilb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/iks-dev/iks/internal/fsutil"
)

// DefaultAddress is where the load balancer listens.
const DefaultAddress = "127.0.0.1:6444"

// dialTimeout bounds one attempt to reach a server.
const dialTimeout = 2 * time.Second

// LB is the load balancer component.
type LB struct {
	addr      string
	fallback  string // the --server host:port, always kept
	stateFile string
	log       *slog.Logger

	mu      sync.Mutex
	servers []string
	current string
	ln      net.Listener
	conns   map[net.Conn]struct{}
	wg      sync.WaitGroup
	cancel  context.CancelFunc
	watch   func(ctx context.Context)
	learned bool // a list was read from the API
	// seen: when each learnt server was last in the API's list.
	seen map[string]time.Time
	now  func() time.Time
}

// retain is how long a server stays in the list after it left the API's:
// an apiserver under load can miss its 15 s endpoint lease and drop out
// for a refresh or two while it serves; a dead one costs a failed dial
// (the next server is tried), a forgotten live one costs a failover.
const retain = 2 * time.Minute

// New returns the load balancer for addr, starting with server (host:port)
// and the servers recorded in stateFile.
func New(addr, server, stateFile string, log *slog.Logger) *LB {
	l := &LB{addr: addr, fallback: server, stateFile: stateFile, log: log.With("component", "apiserver-lb"),
		current: server, conns: map[net.Conn]struct{}{}, seen: map[string]time.Time{}, now: time.Now}
	servers := []string{server}
	if data, err := os.ReadFile(stateFile); err == nil {
		var saved []string
		if json.Unmarshal(data, &saved) == nil {
			servers = merge(saved, server)
		}
	}
	l.servers = servers
	return l
}

// URL is the https URL clients use.
func (l *LB) URL() string { return "https://" + l.addr }

// Servers returns the current server list.
func (l *LB) Servers() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.servers)
}

// SetServers replaces the learnt servers (the --server one is kept, and
// so are those seen in the last retain) and records them.
func (l *LB) SetServers(servers []string) {
	l.mu.Lock()
	now := l.now()
	for _, s := range servers {
		l.seen[s] = now
	}
	var keep []string
	for s, t := range l.seen {
		if now.Sub(t) < retain {
			keep = append(keep, s)
		} else {
			delete(l.seen, s)
		}
	}
	next := merge(keep, l.fallback)
	same := slices.Equal(next, l.servers)
	l.servers = next
	l.mu.Unlock()
	if same {
		return
	}
	l.log.Info("apiserver list updated", "servers", next)
	if data, err := json.Marshal(next); err == nil {
		if err := os.MkdirAll(filepath.Dir(l.stateFile), 0o700); err != nil {
			l.log.Warn("cannot record the apiserver list", "err", err)
		} else if err := fsutil.WriteFileAtomic(l.stateFile, data, 0o600); err != nil {
			l.log.Warn("cannot record the apiserver list", "err", err)
		}
	}
}

// merge returns servers (sorted, deduplicated) with fallback included.
func merge(servers []string, fallback string) []string {
	out := slices.Clone(servers)
	if !slices.Contains(out, fallback) {
		out = append(out, fallback)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Name implements component.Component.
func (l *LB) Name() string { return "apiserver-lb" }

// Init implements component.Component.
func (l *LB) Init(context.Context) error { return nil }

// Start listens and serves in the background.
func (l *LB) Start(context.Context) error {
	ln, err := net.Listen("tcp", l.addr)
	if err != nil {
		return fmt.Errorf("apiserver load balancer: listen on %s: %w (is another iks agent running in this network namespace?)", l.addr, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l.mu.Lock()
	l.ln, l.cancel = ln, cancel
	watch := l.watch
	l.mu.Unlock()
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				if !errors.Is(err, net.ErrClosed) {
					l.log.Error("accept", "err", err)
				}
				return
			}
			l.wg.Add(1)
			go func() { defer l.wg.Done(); l.serve(ctx, c) }()
		}
	}()
	if watch != nil {
		l.wg.Add(1)
		go func() { defer l.wg.Done(); watch(ctx) }()
	}
	return nil
}

// Stop closes the listener and every proxied connection.
func (l *LB) Stop(context.Context) error {
	l.mu.Lock()
	ln, cancel := l.ln, l.cancel
	for c := range l.conns {
		c.Close()
	}
	l.mu.Unlock()
	if ln != nil {
		ln.Close()
		cancel()
	}
	l.wg.Wait()
	return nil
}

// serve proxies c to the first server that accepts, the last good first.
func (l *LB) serve(ctx context.Context, c net.Conn) {
	defer c.Close()
	l.mu.Lock()
	order := slices.Clone(l.servers)
	cur := l.current
	l.mu.Unlock()
	if i := slices.Index(order, cur); i > 0 {
		order = append(order[i:], order[:i]...)
	}
	var up net.Conn
	var err error
	d := net.Dialer{Timeout: dialTimeout}
	for _, s := range order {
		if up, err = d.DialContext(ctx, "tcp", s); err == nil {
			if s != cur {
				l.mu.Lock()
				l.current = s
				l.mu.Unlock()
				l.log.Info("apiserver switched", "from", cur, "to", s)
			}
			break
		}
	}
	if up == nil {
		l.log.Warn("no apiserver reachable", "servers", order, "err", err)
		return
	}
	defer up.Close()
	l.track(c, up, true)
	defer l.track(c, up, false)
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, c); closeWrite(up); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); closeWrite(c); done <- struct{}{} }()
	<-done
	<-done
}

func (l *LB) track(a, b net.Conn, add bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if add {
		l.conns[a], l.conns[b] = struct{}{}, struct{}{}
	} else {
		delete(l.conns, a)
		delete(l.conns, b)
	}
}

func closeWrite(c net.Conn) {
	if t, ok := c.(*net.TCPConn); ok {
		_ = t.CloseWrite()
	}
}
