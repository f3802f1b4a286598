package tunnel

import (
	"log/slog"
	"net"
	"sync"
)

// agentConns wraps the agent listener. It tracks every connection and the
// one each node's agent streams over, so that when a node connects again
// (after a network cut it noticed first) its previous connection is
// closed at once. Otherwise the server would keep sending that node's
// traffic down the dead stream, the oldest registered, until its keepalive
// gives up on it (up to 40s).
type agentConns struct {
	net.Listener
	log *slog.Logger

	mu    sync.Mutex
	conns map[string]net.Conn // by remote address
	nodes map[string]string   // node name -> remote address of its stream
}

func newAgentConns(l net.Listener, log *slog.Logger) *agentConns {
	return &agentConns{Listener: l, log: log, conns: map[string]net.Conn{}, nodes: map[string]string{}}
}

// Accept implements net.Listener.
func (a *agentConns) Accept() (net.Conn, error) {
	c, err := a.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &agentConn{Conn: c, owner: a, addr: c.RemoteAddr().String()}
	a.mu.Lock()
	a.conns[tc.addr] = tc
	a.mu.Unlock()
	return tc, nil
}

// claim records that node streams from addr now, and closes the
// connection of its previous stream.
func (a *agentConns) claim(node, addr string) {
	a.mu.Lock()
	prev, had := a.nodes[node]
	a.nodes[node] = addr
	var old net.Conn
	if had && prev != addr {
		old = a.conns[prev]
	}
	a.mu.Unlock()
	if old != nil {
		a.log.Info("node reconnected: closing its previous tunnel connection", "node", node, "previous", prev, "new", addr)
		_ = old.Close()
	}
}

// release forgets node's stream from addr unless a newer one replaced it.
func (a *agentConns) release(node, addr string) {
	a.mu.Lock()
	if a.nodes[node] == addr {
		delete(a.nodes, node)
	}
	a.mu.Unlock()
}

type agentConn struct {
	net.Conn
	owner *agentConns
	addr  string
	once  sync.Once
}

func (c *agentConn) Close() error {
	c.once.Do(func() {
		c.owner.mu.Lock()
		if c.owner.conns[c.addr] == net.Conn(c) {
			delete(c.owner.conns, c.addr)
		}
		c.owner.mu.Unlock()
	})
	return c.Conn.Close()
}
