//go:build linux && (amd64 || arm64)

package proxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// rawPair returns a raw client connection and the server's end of it.
func rawPair(t *testing.T) (*rawTCP, net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	acc := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			close(acc)
			return
		}
		acc <- c
	}()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	srv, ok := <-acc
	if !ok {
		t.Fatal("accept failed")
	}
	r, ok := rawConn(c).(*rawTCP)
	if !ok {
		t.Fatalf("rawConn(%T) is not raw", c)
	}
	t.Cleanup(func() { r.Close(); srv.Close() })
	return r, srv
}

func TestRawTCPReadWriteEOF(t *testing.T) {
	r, srv := rawPair(t)
	if n, err := r.Write([]byte("ping")); n != 4 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(srv, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("peer read %q, %v", buf, err)
	}
	go func() { _, _ = srv.Write([]byte("pong")); srv.Close() }()
	got, err := io.ReadAll(r)
	if err != nil || string(got) != "pong" {
		t.Fatalf("ReadAll = %q, %v; want pong and a clean EOF", got, err)
	}
	if n, err := r.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("Read after EOF = %d, %v; want 0, io.EOF", n, err)
	}
	if n, err := r.Write(nil); n != 0 || err != nil {
		t.Fatalf("empty Write = %d, %v", n, err)
	}
}

// A write larger than the socket buffers waits for the peer (EAGAIN,
// then the poller) and arrives whole, in order.
func TestRawTCPLargeWrite(t *testing.T) {
	r, srv := rawPair(t)
	want := bytes.Repeat([]byte("0123456789abcdef"), 1<<19) // 8 MiB
	done := make(chan error, 1)
	go func() {
		n, err := r.Write(want)
		if err == nil && n != len(want) {
			err = errors.New("short write")
		}
		done <- err
	}()
	got := make([]byte, len(want))
	for off := 0; off < len(got); {
		time.Sleep(time.Millisecond) // a slow reader: the writer must wait
		n, err := srv.Read(got[off:min(off+1<<20, len(got))])
		if err != nil {
			t.Fatalf("peer read at %d: %v", off, err)
		}
		off += n
	}
	if err := <-done; err != nil {
		t.Fatalf("Write: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("the peer received other bytes than written")
	}
}

func TestRawTCPDeadlineAndClose(t *testing.T) {
	r, _ := rawPair(t)
	_ = r.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	_, err := r.Read(make([]byte, 8))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read past its deadline: %v (%T); want a net.Error timeout", err, err)
	}
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "read" {
		t.Fatalf("Read error %v is not a *net.OpError for read", err)
	}
	_ = r.SetReadDeadline(time.Time{})
	errc := make(chan error, 1)
	go func() { _, err := r.Read(make([]byte, 8)); errc <- err }()
	time.Sleep(10 * time.Millisecond)
	r.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Read interrupted by Close: %v; want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not wake a waiting Read")
	}
	if _, err := r.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Write after Close: %v; want net.ErrClosed", err)
	}
}

// A write to a connection the peer reset fails with the reset, wrapped
// as net.TCPConn wraps it.
func TestRawTCPWriteToReset(t *testing.T) {
	r, srv := rawPair(t)
	_ = srv.(*net.TCPConn).SetLinger(0)
	srv.Close() // RST
	deadline := time.Now().Add(5 * time.Second)
	var err error
	for err == nil && time.Now().Before(deadline) {
		_, err = r.Write([]byte("after the reset"))
	}
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "write" {
		t.Fatalf("Write to a reset peer: %v; want a *net.OpError for write", err)
	}
}

func TestRawConnLeavesOtherConns(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if got := rawConn(a); got != a {
		t.Fatalf("rawConn(net.Pipe) = %T; want the pipe unchanged", got)
	}
}

// A held write goes out with the next Read, which then returns the
// answer; a large held write that meets a full buffer arrives whole.
func TestRawTCPHeldWrite(t *testing.T) {
	for _, size := range []int{5, 8 << 20} {
		r, srv := rawPair(t)
		req := bytes.Repeat([]byte("r"), size)
		r.holdNextWrite()
		if n, err := r.Write(req); n != size || err != nil {
			t.Fatalf("held Write = %d, %v", n, err)
		}
		// Nothing is sent before the Read.
		_ = srv.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
		if n, err := srv.Read(make([]byte, 1)); n != 0 || !isTimeout(err) {
			t.Fatalf("the peer read %d bytes (%v) before the Read that sends them", n, err)
		}
		_ = srv.SetReadDeadline(time.Time{})
		go func() {
			got := make([]byte, size)
			if _, err := io.ReadFull(srv, got); err != nil || !bytes.Equal(got, req) {
				srv.Close()
				return
			}
			_, _ = srv.Write([]byte("answer"))
		}()
		_ = r.SetReadDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 16)
		n, err := io.ReadAtLeast(r, buf, 6)
		if err != nil || string(buf[:n]) != "answer" {
			t.Fatalf("size %d: Read after a held write = %q, %v; want the answer", size, buf[:n], err)
		}
		// The next Write is not held.
		if _, err := r.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		one := make([]byte, 1)
		if _, err := io.ReadFull(srv, one); err != nil || one[0] != 'x' {
			t.Fatalf("a Write after the held one did not go out: %q, %v", one, err)
		}
	}
}

// A held write to a peer that reset the connection fails the Read with
// a write error (a stale pooled connection, retried by the caller).
func TestRawTCPHeldWriteToReset(t *testing.T) {
	r, srv := rawPair(t)
	_ = srv.(*net.TCPConn).SetLinger(0)
	srv.Close()
	_ = r.SetReadDeadline(time.Now().Add(5 * time.Second))
	deadline := time.Now().Add(5 * time.Second)
	var err error
	for err == nil && time.Now().Before(deadline) {
		r.holdNextWrite()
		_, _ = r.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
		_, err = r.Read(make([]byte, 8))
	}
	if err == nil || isTimeout(err) {
		t.Fatalf("Read after a held write to a reset peer: %v; want the reset or EOF", err)
	}
}
