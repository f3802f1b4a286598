package proxy

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/iks-dev/iks/internal/alb/route"
)

// accessEntry is one JSON access log line (fields as ingress-nginx's
// JSON log format names them where it has them).
type accessEntry struct {
	Time     string  `json:"time"`
	Remote   string  `json:"remote_addr"`
	Host     string  `json:"host"`
	Method   string  `json:"request_method"`
	URI      string  `json:"request_uri"`
	Proto    string  `json:"server_protocol"`
	Status   int     `json:"status"`
	Bytes    int64   `json:"bytes_sent"`
	Duration float64 `json:"request_time"`
	Ingress  string  `json:"ingress,omitempty"`
	Upstream string  `json:"service,omitempty"`
	Agent    string  `json:"http_user_agent,omitempty"`
}

// accessFlush is how long a line may wait in the buffer: writing each
// line to the container's log pipe at once costs a syscall per request.
const accessFlush = 250 * time.Millisecond

// AccessLog is where the JSON lines go (stdout in the ALB pod), buffered
// and flushed every accessFlush and on Close.
type AccessLog struct {
	mu   sync.Mutex
	bw   *bufio.Writer
	stop chan struct{}
	done chan struct{}
}

// NewAccessLog writes lines to w; Close flushes and stops it.
func NewAccessLog(w io.Writer) *AccessLog {
	l := &AccessLog{bw: bufio.NewWriterSize(w, 64<<10), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		t := time.NewTicker(accessFlush)
		defer t.Stop()
		for {
			select {
			case <-l.stop:
				return
			case <-t.C:
				l.mu.Lock()
				_ = l.bw.Flush()
				l.mu.Unlock()
			}
		}
	}()
	return l
}

// Close flushes what is buffered and stops the flusher.
func (l *AccessLog) Close() {
	select {
	case <-l.stop:
		return
	default:
	}
	close(l.stop)
	<-l.done
	l.mu.Lock()
	_ = l.bw.Flush()
	l.mu.Unlock()
}

func (l *AccessLog) write(e *accessEntry) {
	b, err := json.Marshal(e)
	if err != nil {
		return
	}
	b = append(b, '\n')
	l.mu.Lock()
	_, _ = l.bw.Write(b)
	l.mu.Unlock()
}

// logWriter records the status and size of a response; Unwrap lets
// http.ResponseController reach Hijack (WebSockets) and Flush.
type logWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *logWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *logWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

func (w *logWriter) Flush() { http.NewResponseController(w.ResponseWriter).Flush() }

func (w *logWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.status == 0 {
		w.status = http.StatusSwitchingProtocols
	}
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

func (w *logWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// logged serves r through serve and writes its access log line.
func (h *Handler) logged(w http.ResponseWriter, r *http.Request, t *route.Table, serve func(http.ResponseWriter)) {
	start := time.Now()
	lw := &logWriter{ResponseWriter: w}
	defer func() {
		e := &accessEntry{Time: start.UTC().Format(time.RFC3339Nano), Remote: r.RemoteAddr, Host: r.Host, Method: r.Method,
			URI: r.RequestURI, Proto: r.Proto, Status: lw.status, Bytes: lw.bytes, Duration: time.Since(start).Seconds(),
			Agent: r.UserAgent()}
		hn := r.Host
		if x, _, err := net.SplitHostPort(hn); err == nil {
			hn = x
		}
		if rt, _ := t.Lookup(hn, r.URL.Path); rt != nil {
			e.Ingress = rt.Ingress
			if rt.Backend != nil {
				e.Upstream = rt.Backend.Name
			}
		}
		h.Access.write(e)
	}()
	serve(lw)
}
