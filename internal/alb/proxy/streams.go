package proxy

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/iks-dev/iks/internal/alb/route"
)

// udpIdle ends a UDP session without traffic (as nginx's proxy_timeout).
const udpIdle = 60 * time.Second

// Streams forwards the tcp-services and udp-services ports. Apply opens
// and closes listeners as the table changes; a listener that stays keeps
// its open connections and only sees its backend replaced.
type Streams struct {
	log *slog.Logger
	mu  sync.Mutex
	on  map[string]*stream // "tcp/9000"
}

type stream struct {
	backend atomic.Pointer[route.Backend]
	closer  io.Closer
}

// NewStreams returns an empty set of forwarders.
func NewStreams(log *slog.Logger) *Streams { return &Streams{log: log, on: map[string]*stream{}} }

// Apply makes the open listeners those of t.Streams.
func (s *Streams) Apply(t *route.Table) {
	s.mu.Lock()
	defer s.mu.Unlock()
	want := map[string]bool{}
	for _, st := range t.Streams {
		k := st.Proto + "/" + strconv.Itoa(st.Port)
		want[k] = true
		if cur, ok := s.on[k]; ok {
			cur.backend.Store(st.Backend)
			continue
		}
		ns := &stream{}
		ns.backend.Store(st.Backend)
		addr := ":" + strconv.Itoa(st.Port)
		if st.Proto == "tcp" {
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				s.log.Warn("cannot open a tcp-services port", "port", st.Port, "err", err)
				continue
			}
			ns.closer = ln
			go s.serveTCP(ln, ns)
		} else {
			pc, err := net.ListenPacket("udp", addr)
			if err != nil {
				s.log.Warn("cannot open a udp-services port", "port", st.Port, "err", err)
				continue
			}
			ns.closer = pc
			go s.serveUDP(pc, ns)
		}
		s.on[k] = ns
		s.log.Info("stream port opened", "port", k, "backend", st.Backend.Name)
	}
	for k, st := range s.on {
		if !want[k] {
			st.closer.Close()
			delete(s.on, k)
			s.log.Info("stream port closed", "port", k)
		}
	}
}

// Close closes every listener.
func (s *Streams) Close() { s.Apply(&route.Table{}) }

func (s *Streams) serveTCP(ln net.Listener, st *stream) {
	for {
		c, err := ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				s.log.Warn("tcp-services accept", "err", err)
			}
			return
		}
		go s.pipe(c, st.backend.Load())
	}
}

func (s *Streams) pipe(c net.Conn, be *route.Backend) {
	defer c.Close()
	var up net.Conn
	var err error
	for i := 0; i < min(maxDialTries, len(be.Endpoints)); i++ {
		if up, err = net.DialTimeout("tcp", be.Pick(), 5*time.Second); err == nil {
			break
		}
	}
	if up == nil {
		s.log.Warn("tcp-services backend unreachable", "backend", be.Name, "err", err)
		return
	}
	defer up.Close()
	join(c, up)
}

// join copies both ways between a and b until both directions end,
// half-closing each side as its peer finishes.
func join(a, b net.Conn) {
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go cp(b, a)
	go cp(a, b)
	<-done
	<-done
}

func (s *Streams) serveUDP(pc net.PacketConn, st *stream) {
	var mu sync.Mutex
	sessions := map[string]net.Conn{}
	buf := make([]byte, 64<<10)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			mu.Lock()
			for _, c := range sessions {
				c.Close()
			}
			mu.Unlock()
			return
		}
		mu.Lock()
		up, ok := sessions[from.String()]
		if !ok {
			ep := st.backend.Load().Pick()
			if ep == "" {
				mu.Unlock()
				continue
			}
			if up, err = net.Dial("udp", ep); err != nil {
				mu.Unlock()
				continue
			}
			sessions[from.String()] = up
			go func(key string, up net.Conn, from net.Addr) {
				rb := make([]byte, 64<<10)
				for {
					_ = up.SetReadDeadline(time.Now().Add(udpIdle))
					m, err := up.Read(rb)
					if err != nil {
						break
					}
					_, _ = pc.WriteTo(rb[:m], from)
				}
				mu.Lock()
				delete(sessions, key)
				mu.Unlock()
				up.Close()
			}(from.String(), up, from)
		}
		mu.Unlock()
		_, _ = up.Write(buf[:n])
	}
}
