package main

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// tcpBuf is the read and write size of tcpsink and tcpsend: large enough
// that system calls do not limit the throughput.
const tcpBuf = 256 << 10

// tcpsink [-l ADDR] accepts TCP connections and discards what they send.
// When a sender closes its side, tcpsink answers the number of bytes it
// received (8 bytes, big endian) and closes: the sender measures what
// arrived, not what it queued. It runs until SIGTERM or SIGINT.
func tcpsink(args []string) error {
	fs := flag.NewFlagSet("tcpsink", flag.ContinueOnError)
	addr := fs.String("l", ":5201", "listen address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("tcpsink: listen on %s: %w", *addr, err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() { <-ctx.Done(); ln.Close() }()
	fmt.Println("tcpsink listening on", ln.Addr())
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("tcpsink: accept: %w", err)
		}
		go sink(c)
	}
}

// sink drains one connection and answers its byte count.
func sink(c net.Conn) {
	defer c.Close()
	buf := make([]byte, tcpBuf)
	var n uint64
	for {
		m, err := c.Read(buf)
		n += uint64(m)
		if err != nil {
			if errors.Is(err, io.EOF) {
				_ = binary.Write(c, binary.BigEndian, n)
			}
			return
		}
	}
}

// tcpsend [-d DURATION] [-P STREAMS] HOST:PORT sends to a tcpsink for
// DURATION over STREAMS parallel connections and prints the throughput
// the sink acknowledged: "tcpsend streams=P seconds=S bytes=B gbps=G".
func tcpsend(args []string) error {
	fs := flag.NewFlagSet("tcpsend", flag.ContinueOnError)
	d := fs.Duration("d", 4*time.Second, "how long to send")
	p := fs.Int("P", 1, "parallel streams")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: httpd tcpsend [-d 4s] [-P 1] HOST:PORT")
	}
	if *p < 1 || *p > 128 || *d <= 0 {
		return fmt.Errorf("tcpsend: -P %d -d %s: want 1-128 streams and a positive duration", *p, *d)
	}
	target := fs.Arg(0)
	conns := make([]net.Conn, *p)
	for i := range conns {
		c, err := net.DialTimeout("tcp", target, 5*time.Second)
		if err != nil {
			return fmt.Errorf("tcpsend: dial %s: %w", target, err)
		}
		defer c.Close()
		conns[i] = c
	}
	start := time.Now()
	end := start.Add(*d)
	counts := make([]uint64, *p)
	errs := make([]error, *p)
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			counts[i], errs[i] = send(c.(*net.TCPConn), end)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("tcpsend to %s: %w", target, err)
	}
	var total uint64
	for _, n := range counts {
		total += n
	}
	fmt.Printf("tcpsend streams=%d seconds=%.3f bytes=%d gbps=%.3f\n",
		*p, elapsed.Seconds(), total, float64(total)*8/elapsed.Seconds()/1e9)
	return nil
}

// send writes until end, closes its side and returns the byte count the
// sink acknowledged.
func send(c *net.TCPConn, end time.Time) (uint64, error) {
	buf := make([]byte, tcpBuf)
	if err := c.SetWriteDeadline(end); err != nil {
		return 0, err
	}
	var sent uint64
	for {
		n, err := c.Write(buf)
		sent += uint64(n)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
		if err != nil {
			return 0, fmt.Errorf("write: %w", err)
		}
	}
	if err := c.CloseWrite(); err != nil {
		return 0, fmt.Errorf("close write: %w", err)
	}
	if err := c.SetReadDeadline(time.Now().Add(30 * time.Second)); err != nil {
		return 0, err
	}
	var got uint64
	if err := binary.Read(c, binary.BigEndian, &got); err != nil {
		return 0, fmt.Errorf("read the sink's count: %w", err)
	}
	if got != sent {
		return 0, fmt.Errorf("sink received %d bytes, sent %d", got, sent)
	}
	return got, nil
}
