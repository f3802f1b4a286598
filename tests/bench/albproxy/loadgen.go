package main

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// LoadResult is what -load prints (one JSON line): latencies in
// milliseconds, measured from each request's scheduled send time.
type LoadResult struct {
	Rate     float64 `json:"rate"`     // asked requests per second
	Achieved float64 `json:"achieved"` // answered requests per second
	Sent     int     `json:"sent"`
	Errors   int     `json:"errors"`
	P50      float64 `json:"p50_ms"`
	P99      float64 `json:"p99_ms"`
	P999     float64 `json:"p999_ms"`
	Max      float64 `json:"max_ms"`
}

// runLoad is an open-loop, fixed-rate load generator (as wrk2): request
// i is due at start + i/rate whatever happened to the earlier ones; a
// dispatcher queues the due times and conns keep-alive connections take
// them in order. A request's latency runs from its due time, not from
// when a connection was free to send it, so a stalled proxy is charged
// for every request it held back (no coordinated omission).
func runLoad(target string, rate float64, d time.Duration, conns int) error {
	u, err := url.Parse(target)
	if err != nil {
		return fmt.Errorf("load target: %w", err)
	}
	n := int(rate * d.Seconds())
	due := make(chan time.Time, n)
	lat := make([]float64, n)
	var next, errs atomic.Int64
	var wg sync.WaitGroup
	start := time.Now().Add(100 * time.Millisecond)
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var c net.Conn
			var br *bufio.Reader
			req := []byte("GET " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Hostname() + "\r\n\r\n")
			for at := range due {
				i := next.Add(1) - 1
				// A kept-alive connection the server closed (nginx's
				// keepalive_requests) is replaced once, as wrk does.
				ok, retry := false, true
				for try := 0; try < 2 && retry; try++ {
					if c == nil {
						var err error
						if c, err = dial(u); err != nil {
							c = nil
							break
						}
						br = bufio.NewReaderSize(c, 8192)
					}
					var closing bool
					ok, closing, retry = roundTrip(c, br, req)
					if !ok || closing {
						c.Close()
						c = nil
					}
				}
				lat[i] = float64(time.Since(at).Microseconds()) / 1000
				if !ok {
					errs.Add(1)
					lat[i] = -1
				}
			}
			if c != nil {
				c.Close()
			}
		}()
	}
	for i := 0; i < n; {
		now := time.Now()
		for ; i < n; i++ {
			at := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
			if at.After(now) {
				break
			}
			due <- at
		}
		time.Sleep(200 * time.Microsecond)
	}
	close(due)
	wg.Wait()
	took := time.Since(start)
	ok := slices.DeleteFunc(lat, func(v float64) bool { return v < 0 })
	slices.Sort(ok)
	q := func(p float64) float64 {
		if len(ok) == 0 {
			return 0
		}
		return ok[max(0, int(math.Ceil(p*float64(len(ok))))-1)] // nearest rank
	}
	r := LoadResult{Rate: rate, Achieved: float64(len(ok)) / took.Seconds(), Sent: n, Errors: int(errs.Load()),
		P50: q(0.50), P99: q(0.99), P999: q(0.999), Max: q(1)}
	return json.NewEncoder(os.Stdout).Encode(r)
}

// roundTrip sends req on c and reads the answer: ok for a 200 read in
// full, closing when the server asked to close the connection, retry
// when no answer came (a connection closed while idle; an error status
// is not retried).
func roundTrip(c net.Conn, br *bufio.Reader, req []byte) (ok, closing, retry bool) {
	if _, err := c.Write(req); err != nil {
		return false, true, true
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return false, true, true
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return err == nil && resp.StatusCode == 200, resp.Close, false
}

func dial(u *url.URL) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil || u.Scheme != "https" {
		return c, err
	}
	tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true, ServerName: "bench", NextProtos: []string{"http/1.1"}}) //nolint:gosec // benchmark against a self-signed proxy
	if err := tc.Handshake(); err != nil {
		c.Close()
		return nil, err
	}
	return tc, nil
}
