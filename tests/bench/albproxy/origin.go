package main

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// originBody is the benchmark answer: a small page, as typical API replies.
var originBody = []byte(strings.Repeat("x", 612)) // nginx's default index.html size

// originAnswer is the whole HTTP/1.1 answer to every request.
var originAnswer = []byte("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: " + strconv.Itoa(len(originBody)) + "\r\n\r\n" + string(originBody))

// serveOrigin answers every request on addr with originAnswer. Kind
// "http" is Go's net/http server; kind "raw" a minimal one, on purpose:
// the origins share a CPU with the load generator, and a lighter origin
// leaves more of it to the load, so that the proxies are what limits.
// It serves keep-alive connections, pipelined ones included, of
// bodyless requests only (what the proxies under test send): a request
// is everything up to an empty line.
func serveOrigin(addr, kind string) error {
	switch kind {
	case "http":
		srv := &http.Server{Addr: addr, ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			_, _ = w.Write(originBody)
		})}
		return srv.ListenAndServe()
	case "raw":
	default:
		return fmt.Errorf("-origin-kind %q: want raw or http", kind)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("origin: %w", err)
	}
	for {
		c, err := l.Accept()
		if err != nil {
			return fmt.Errorf("origin: %w", err)
		}
		go originConn(c)
	}
}

func originConn(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 16<<10)
	out := make([]byte, 0, 16*len(originAnswer))
	filled := 0
	for {
		n, err := c.Read(buf[filled:])
		if err != nil {
			return
		}
		filled += n
		out = out[:0]
		rest := buf[:filled]
		for {
			i := bytes.Index(rest, []byte("\r\n\r\n"))
			if i < 0 {
				break
			}
			out = append(out, originAnswer...)
			rest = rest[i+4:]
		}
		filled = copy(buf, rest)
		if filled == len(buf) {
			return // a head longer than the buffer: not from a proxy under test
		}
		if len(out) > 0 {
			if _, err := c.Write(out); err != nil {
				return
			}
		}
	}
}
