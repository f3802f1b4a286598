package main

import (
	"net"
	"strings"
	"testing"
	"time"
)

// TestTCPSendSink sends to a sink on loopback and checks the sink's
// acknowledged count matches what was sent, over several streams.
func TestTCPSendSink(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go sink(c)
		}
	}()
	var counts []uint64
	for i := 0; i < 2; i++ {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		n, err := send(c.(*net.TCPConn), time.Now().Add(100*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		counts = append(counts, n)
	}
	for i, n := range counts {
		if n == 0 {
			t.Errorf("stream %d: sink acknowledged 0 bytes", i)
		}
	}
	if err := tcpsend([]string{"-d", "100ms", "-P", "2", ln.Addr().String()}); err != nil {
		t.Errorf("tcpsend: %v", err)
	}
	if err := tcpsend([]string{"-P", "0", ln.Addr().String()}); err == nil || !strings.Contains(err.Error(), "1-128") {
		t.Errorf("tcpsend -P 0 = %v, want an error naming the valid range", err)
	}
}
