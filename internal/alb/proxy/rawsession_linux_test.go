//go:build linux && (amd64 || arm64)

package proxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// sessionSteps runs a read session on r whose steps read what there is
// (reads of up to 64 bytes) into got until a Read would wait; each step
// first calls between(step). It ends at EOF or an error, or when stop
// reports true.
func sessionSteps(r *rawTCP, between func(step int), stop func(got []byte) bool) (got []byte, steps int, readErr, err error) {
	buf := make([]byte, 64)
	err = r.readSession(func() bool {
		steps++
		between(steps)
		for {
			n, e := r.Read(buf)
			got = append(got, buf[:n]...)
			if errors.Is(e, errWouldBlock) {
				return stop(got)
			}
			if e != nil {
				readErr = e
				return true
			}
		}
	})
	return got, steps, readErr, err
}

// Inside a session, a read that left nothing behind makes the next Read
// wait without trying: bytes that arrive meanwhile are not read by it,
// and the wait that follows wakes at once for them (their readiness is
// kept, not reset). TCP_INQ is on.
func TestReadSessionWaitsAfterDrainingRead(t *testing.T) {
	r, srv := rawPair(t)
	if _, err := srv.Write([]byte("first")); err != nil {
		t.Fatal(err)
	}
	var afterDrain []byte
	got, steps, readErr, err := sessionSteps(r, func(step int) {}, func(got []byte) bool {
		if len(got) == len("first") && afterDrain == nil {
			// Drained: send more; the next Read must still report
			// errWouldBlock (no read(2)), and the wait must wake.
			if _, err := srv.Write([]byte("second")); err != nil {
				t.Error(err)
			}
			n, e := r.Read(make([]byte, 64))
			afterDrain = []byte{byte(n)}
			if !errors.Is(e, errWouldBlock) || n != 0 {
				t.Errorf("Read right after a draining read = %d, %v; want 0, errWouldBlock", n, e)
			}
			return false
		}
		return string(got) == "firstsecond"
	})
	if err != nil || readErr != nil {
		t.Fatalf("session: %v, read: %v", err, readErr)
	}
	if r.inq != 1 {
		t.Fatalf("TCP_INQ state %d; want 1 (on) on this kernel", r.inq)
	}
	if string(got) != "firstsecond" || steps != 2 {
		t.Fatalf("read %q in %d steps; want firstsecond in 2", got, steps)
	}
}

// A FIN that came with the last bytes is not waited for: the TCP_INQ
// hint reports it, and the next Read returns EOF.
func TestReadSessionSeesFINWithData(t *testing.T) {
	r, srv := rawPair(t)
	if _, err := srv.Write([]byte("GET / HTTP/1.1\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	_ = srv.(*net.TCPConn).CloseWrite()
	_ = r.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, steps, readErr, err := sessionSteps(r, func(int) {}, func([]byte) bool { return false })
	if err != nil || readErr != io.EOF {
		t.Fatalf("session: %v, read: %v; want EOF in the first step", err, readErr)
	}
	if string(got) != "GET / HTTP/1.1\r\n\r\n" || steps != 1 {
		t.Fatalf("read %q in %d steps", got, steps)
	}
}

// Without the TCP_INQ hint every Read tries, and a session still works.
func TestReadSessionWithoutInq(t *testing.T) {
	r, srv := rawPair(t)
	r.inq = -1
	go func() {
		_, _ = srv.Write([]byte("a"))
		_, _ = srv.Write([]byte("b"))
		_ = srv.(*net.TCPConn).CloseWrite()
	}()
	_ = r.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, _, readErr, err := sessionSteps(r, func(int) {}, func([]byte) bool { return false })
	if err != nil || readErr != io.EOF || string(got) != "ab" {
		t.Fatalf("read %q, %v (session %v); want ab, EOF", got, readErr, err)
	}
}

// Waiting in a session ends with the deadline, or with Close.
func TestReadSessionDeadlineAndClose(t *testing.T) {
	r, _ := rawPair(t)
	_ = r.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	_, _, _, err := sessionSteps(r, func(int) {}, func([]byte) bool { return false })
	if !isTimeout(err) {
		t.Fatalf("session past its deadline: %v; want a timeout", err)
	}
	_ = r.SetReadDeadline(time.Time{})
	go func() { time.Sleep(20 * time.Millisecond); r.Close() }()
	if _, _, _, err = sessionSteps(r, func(int) {}, func([]byte) bool { return false }); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("session of a closed connection: %v; want net.ErrClosed", err)
	}
}

// A write in a session larger than the socket buffers waits for room as
// Write does, and arrives whole; a peek at the socket (clientGone) does
// not wait for the session's read lock.
func TestReadSessionWriteAndPeek(t *testing.T) {
	r, srv := rawPair(t)
	want := bytes.Repeat([]byte("0123456789abcdef"), 1<<19) // 8 MiB
	recv := make(chan []byte, 1)
	go func() {
		got, _ := io.ReadAll(io.LimitReader(srv, int64(len(want))))
		recv <- got
	}()
	peeked := make(chan bool, 1)
	_ = r.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _, _, err := sessionSteps(r, func(step int) {
		if step == 1 {
			if n, err := r.Write(want); n != len(want) || err != nil {
				t.Errorf("Write in a session = %d, %v", n, err)
			}
			go func() { peeked <- clientGone(r, make([]byte, 1)) }()
		}
	}, func(got []byte) bool {
		if len(got) > 0 {
			return true
		}
		select {
		case gone := <-peeked:
			if gone {
				t.Error("clientGone reports a connected peer gone")
			}
			_, _ = srv.Write([]byte("x")) // wake the session to end it
			return false
		case <-time.After(5 * time.Second):
			t.Error("clientGone waited for the session's read lock")
			return true
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := <-recv; !bytes.Equal(got, want) {
		t.Fatalf("peer got %d bytes; want the %d written, in order", len(got), len(want))
	}
}
