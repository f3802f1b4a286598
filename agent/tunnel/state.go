package tunnel

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	clientproto "sigs.k8s.io/apiserver-network-proxy/konnectivity-client/proto/client"
)

// unreachableLogInterval spaces the repeated "cannot reach" lines.
const unreachableLogInterval = time.Minute

// tunnelState follows the agent's streams to the server, as seen by a gRPC
// interceptor, and logs what changes: connected, lost, and why the server
// cannot be reached (at the first failure, then every minute). The
// upstream client set logs each failed attempt only through klog, which
// iks hides without --debug.
type tunnelState struct {
	log    *slog.Logger
	server string
	retry  string

	mu        sync.Mutex
	streams   int
	stopping  bool
	lastErr   error
	lastWarn  time.Time
	downSince time.Time
}

func newTunnelState(log *slog.Logger, server string, c Config) *tunnelState {
	return &tunnelState{
		log: log, server: server, downSince: time.Now(),
		retry: "backoff " + c.SyncInterval.String() + " growing to " + c.SyncIntervalCap.String(),
	}
}

func (s *tunnelState) up() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.streams++
	if s.streams == 1 {
		s.lastErr = nil
		s.log.Info("tunnel connected to the konnectivity server", "server", s.server)
	}
}

func (s *tunnelState) down(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.streams--
	if s.streams == 0 && !s.stopping {
		s.downSince, s.lastWarn = time.Now(), time.Time{}
		s.log.Warn("tunnel to the konnectivity server lost; reconnecting", "server", s.server, "err", err, "retry", s.retry)
	}
}

func (s *tunnelState) failed(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastErr = err
	if s.streams > 0 || s.stopping || time.Since(s.lastWarn) < unreachableLogInterval {
		return
	}
	s.lastWarn = time.Now()
	s.log.Warn("cannot reach the konnectivity server; the apiserver cannot reach this node's kubelet and pods until it can",
		"server", s.server, "err", err, "down", time.Since(s.downSince).Round(time.Second).String(), "retry", s.retry)
}

func (s *tunnelState) stop() {
	s.mu.Lock()
	s.stopping = true
	s.mu.Unlock()
}

func (s *tunnelState) err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastErr
}

// interceptor observes the agent's Connect streams: opening errors carry
// the dial, TLS or server (authorization) failure.
func (s *tunnelState) interceptor() grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		cs, err := streamer(ctx, desc, cc, method, opts...)
		if err != nil {
			s.failed(err)
			return nil, err
		}
		return &observedStream{ClientStream: cs, state: s}, nil
	}
}

// observedStream reports the stream as up once the server sent its
// headers (it accepted the agent), and as down when receiving fails or the
// stream ends.
type observedStream struct {
	grpc.ClientStream
	state    *tunnelState
	isUp     atomic.Bool
	upOnce   sync.Once
	downOnce sync.Once
}

func (o *observedStream) Header() (metadata.MD, error) {
	md, err := o.ClientStream.Header()
	switch {
	case err != nil:
		o.state.failed(err)
	case md == nil:
		// The stream ended without headers (the server refused it); its
		// status says why. Nothing else will read this stream.
		if rerr := o.ClientStream.RecvMsg(new(clientproto.Packet)); rerr != nil && rerr != io.EOF {
			o.state.failed(rerr)
		}
	default:
		o.upOnce.Do(func() {
			o.isUp.Store(true)
			o.state.up()
			// The stream's context ends with the stream, however it ends
			// (also when the client is closed without a failed receive).
			go func() {
				<-o.ClientStream.Context().Done()
				o.markDown(o.ClientStream.Context().Err())
			}()
		})
	}
	return md, err
}

func (o *observedStream) RecvMsg(m any) error {
	err := o.ClientStream.RecvMsg(m)
	if err != nil {
		o.markDown(err)
	}
	return err
}

func (o *observedStream) markDown(err error) {
	if o.isUp.Load() {
		o.downOnce.Do(func() { o.state.down(err) })
	}
}
