package tunnel

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
)

// dialTimeout bounds a TCP connect and, for gRPC, the TLS handshake too.
const dialTimeout = 5 * time.Second

// The agent pings an idle server every 30s (the iks server allows pings
// from 10s on, upstream servers from 30s on) and gives up on it 10s later,
// so a network cut is noticed within about 40s. Variables for tests.
var (
	keepaliveTime    = 30 * time.Second
	keepaliveTimeout = 10 * time.Second
)

var errStopped = errors.New("konnectivity agent is stopping")

// reconnectBackoff paces gRPC's own reconnects of one connection; the
// client set replaces broken connections on its own schedule.
var reconnectBackoff = backoff.Config{BaseDelay: time.Second, Multiplier: 1.6, Jitter: 0.2, MaxDelay: DefaultSyncIntervalCap}

func dialOptions(tlsConfig *tls.Config, d *dialer, st *tunnelState) []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithTransportCredentials(credentials.NewTLS(tlsConfig)),
		grpc.WithContextDialer(d.dial),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: keepaliveTime, Timeout: keepaliveTimeout, PermitWithoutStream: true}),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: reconnectBackoff, MinConnectTimeout: dialTimeout}),
		grpc.WithStreamInterceptor(st.interceptor()),
	}
}

// dialer opens the agent's TCP connections and keeps track of them, so
// that Stop can cut them at once and no new one opens after it.
type dialer struct {
	mu     sync.Mutex
	conns  map[*trackedConn]struct{}
	closed bool
}

func newDialer() *dialer { return &dialer{conns: map[*trackedConn]struct{}{}} }

func (d *dialer) dial(ctx context.Context, addr string) (net.Conn, error) {
	if d.isClosed() {
		return nil, errStopped
	}
	nd := net.Dialer{Timeout: dialTimeout, KeepAlive: 15 * time.Second}
	c, err := nd.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, d: d}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		_ = c.Close()
		return nil, errStopped
	}
	d.conns[tc] = struct{}{}
	return tc, nil
}

func (d *dialer) isClosed() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.closed
}

// closeAll closes every open connection and refuses new ones.
func (d *dialer) closeAll() {
	d.mu.Lock()
	d.closed = true
	conns := make([]*trackedConn, 0, len(d.conns))
	for c := range d.conns {
		conns = append(conns, c)
	}
	d.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}

type trackedConn struct {
	net.Conn
	d    *dialer
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.d.mu.Lock()
		delete(c.d.conns, c)
		c.d.mu.Unlock()
	})
	return c.Conn.Close()
}
