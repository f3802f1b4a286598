package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"
)

// fastResult is the outcome of one forwarded request.
type fastResult struct {
	status int
	bytes  int64 // body bytes sent to the client
	keep   bool  // the client connection stays open
}

// errBadResponse is an upstream answer that cannot be parsed: 502.
var errBadResponse = errors.New("malformed response from the backend")

// forward sends the parsed request to an endpoint of fr.be and copies
// the answer to the client's write buffer.
func (fc *fconn) forward(fr *fastReq) fastResult {
	hd := &fc.head
	hasBody := hd.chunked || hd.contentLength > 0
	isHead := string(hd.method) == "HEAD"
	keep := !hd.close
	fc.hdrBuf = fc.appendUpstreamHead(fc.hdrBuf[:0], fr)
	path := ""
	_, _ = fc.br.Discard(hd.n) // hd's slices stay valid until the next read
	if hasBody {
		path = string(hd.path) // the body's reads reuse the buffer
		if fc.bw.Buffered() > 0 && fc.bw.Flush() != nil {
			return fastResult{status: 499} // earlier pipelined answers could not be sent
		}
	}
	cl, be := fc.s.H.tr.h1c, fr.be
	var (
		pc              *h1Conn
		ep              string
		err             error
		bodyOK, started bool // the request body was sent whole / read from at all
	)
	for i := 0; i < min(maxTries, len(be.Endpoints)); i++ {
		if ep = be.Pick(); ep == "" {
			break
		}
		if pc, err = fc.tryEndpoint(cl, ep, fr, hasBody, &started, &bodyOK); err == nil {
			break
		}
		// Another endpoint may take the request when this one could not
		// be reached or closed the connection without answering.
		retry := isDial(err) || errors.Is(err, errStale)
		if retry {
			be.MarkDown(ep)
		}
		if started || !retry {
			break
		}
	}
	if errors.Is(err, errClientGone) {
		fc.s.H.log.Debug("client gone before the upstream answered", "backend", be.Name, "host", fr.host)
		return fastResult{status: 499}
	}
	if pc == nil {
		if path == "" {
			path = string(hd.path)
		}
		return fc.upstreamFailed(fr, path, err, keep && (!hasBody || bodyOK))
	}
	res := fastResult{status: fc.resp.code, keep: keep && !fc.s.closing.Load()}
	n, reusable, err := fc.copyResponse(pc, fr, isHead, !res.keep)
	res.bytes = n
	if err != nil {
		fc.s.H.log.Debug("response copy ended early", "backend", be.Name, "err", err)
		pc.c.Close()
		res.keep = false
		return res
	}
	if reusable {
		cl.put(ep, pc)
	} else {
		pc.c.Close()
	}
	return res
}

func isDial(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// tryEndpoint sends the request to ep and reads the answer's head. A
// pooled connection the backend closed meanwhile is retried once on a
// new one, unless the body was read from already.
func (fc *fconn) tryEndpoint(cl *h1Client, ep string, fr *fastReq, hasBody bool, started, bodyOK *bool) (*h1Conn, error) {
	pc, reused, err := fc.upstreamConn(cl, ep, fr, false)
	for err == nil {
		*started = *started || hasBody
		*bodyOK, err = fc.send(pc, fr, hasBody)
		if err == nil {
			err = fc.readResponseHead(pc, fr.readTO)
		}
		if err == nil {
			return pc, nil
		}
		pc.c.Close()
		if !reused || *started || !errors.Is(err, errStale) {
			return nil, err
		}
		cl.purge(ep)
		pc, reused, err = fc.upstreamConn(cl, ep, fr, true)
	}
	return nil, err
}

// upstreamConn returns a pooled connection to ep (unless fresh) or a new one.
func (fc *fconn) upstreamConn(cl *h1Client, ep string, fr *fastReq, fresh bool) (*h1Conn, bool, error) {
	if !fresh {
		if pc := cl.get(ep); pc != nil {
			if pc.dlUnknown {
				_ = pc.c.SetDeadline(time.Time{})
				pc.rdl, pc.wdl, pc.dlUnknown = time.Time{}, false, false
			}
			return pc, true, nil
		}
	}
	d := net.Dialer{Timeout: fr.connTO, KeepAlive: 30 * time.Second}
	c, err := d.Dial("tcp", ep)
	if err != nil {
		return nil, false, err
	}
	return newH1Conn(rawConn(c)), false, nil
}

// appendUpstreamHead appends the request head sent upstream: the
// client's fields but hop-by-hop ones, then the forwarding headers and
// the body's framing (as forward.go and Request.Write make them).
func (fc *fconn) appendUpstreamHead(b []byte, fr *fastReq) []byte {
	hd := &fc.head
	b = append(b, hd.method...)
	b = append(b, ' ')
	if o := fr.rt.Opts; o != nil && o.RewriteTarget != "" {
		b = append(b, (&url.URL{Path: fr.rt.RewritePath(string(hd.path))}).EscapedPath()...)
	} else {
		b = append(b, hd.path...)
	}
	if hd.hasQuery {
		b = append(b, '?')
		b = append(b, hd.query...)
	}
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, hd.host...)
	b = append(b, "\r\n"...)
	for _, f := range hd.fields {
		if skipRequestField(f.name) || (fr.port != "" && eqFold(f.name, "x-forwarded-port")) ||
			(len(f.value) == 0 && eqFold(f.name, "user-agent")) {
			continue
		}
		b = append(b, f.name...)
		b = append(b, ": "...)
		b = append(b, f.value...)
		b = append(b, "\r\n"...)
	}
	b = append(b, "X-Forwarded-For: "...)
	for i, v := range hd.xff {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(b, v...)
	}
	if len(hd.xff) > 0 {
		b = append(b, ", "...)
	}
	b = append(b, fc.ip...)
	b = append(b, "\r\nX-Real-Ip: "...)
	b = append(b, fc.ip...)
	b = append(b, "\r\nX-Forwarded-Host: "...)
	b = append(b, hd.host...)
	if fr.secure {
		b = append(b, "\r\nX-Forwarded-Proto: https\r\n"...)
	} else {
		b = append(b, "\r\nX-Forwarded-Proto: http\r\n"...)
	}
	if fr.port != "" {
		b = append(b, "X-Forwarded-Port: "...)
		b = append(b, fr.port...)
		b = append(b, "\r\n"...)
	}
	m := string(hd.method)
	switch {
	case hd.chunked:
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	case hd.contentLength > 0 || (hd.contentLength == 0 && (m == "POST" || m == "PUT" || m == "PATCH")):
		b = append(b, "Content-Length: "...)
		b = appendInt(b, hd.contentLength)
		b = append(b, "\r\n"...)
	}
	return append(b, "\r\n"...)
}

// send writes the request head and body upstream; bodyOK reports that
// the whole client body was read.
func (fc *fconn) send(pc *h1Conn, fr *fastReq, hasBody bool) (bodyOK bool, err error) {
	if pc.wdl && !hasBody {
		_ = pc.c.SetWriteDeadline(time.Time{})
		pc.wdl = false
	}
	if hasBody && fr.sendTO > 0 {
		pc.dw.ctx, pc.dw.timeout, pc.wdl = context.Background(), fr.sendTO, true
		defer func() {
			if pc.dw.timedOut && err != nil {
				err = fmt.Errorf("proxy-send-timeout %v: %w", fr.sendTO, err)
			}
			pc.dw.ctx, pc.dw.timeout, pc.dw.timedOut = nil, 0, false
		}()
	}
	if _, err := pc.bw.Write(fc.hdrBuf); err != nil {
		return false, err
	}
	if hasBody {
		if err := fc.sendBody(pc, fr); err != nil {
			return false, err
		}
	}
	if rc, ok := pc.c.(*rawTCP); ok && !hasBody && pc.bw.Buffered() > 0 {
		// Sent by readResponseHead's first read, which then waits for
		// the answer without trying a read first (rawio_linux.go).
		rc.holdNextWrite()
	}
	if err := pc.bw.Flush(); err != nil {
		if isTimeout(err) || hasBody {
			return true, fmt.Errorf("write request: %w", err)
		}
		return true, fmt.Errorf("%w: write request: %v", errStale, err)
	}
	return true, nil
}

// readResponseHead reads the upstream head into fc.resp, skipping
// interim (1xx) answers; nothing of it is consumed from pc.br.
func (fc *fconn) readResponseHead(pc *h1Conn, readTO time.Duration) error {
	pc.armRead(readTO)
	first := true
	for {
		b, _ := pc.br.Peek(pc.br.Buffered())
		if len(b) > 0 {
			first = false
			switch parseRespHead(b, &fc.resp) {
			case headSlow:
				return errBadResponse
			case headOK:
				if c := fc.resp.code; c >= 200 {
					return nil
				} else if c == 101 {
					return fmt.Errorf("%w: 101 to a request without Upgrade", errBadResponse)
				}
				_, _ = pc.br.Discard(fc.resp.n) // 100 Continue, 103 Early Hints: not forwarded
				continue
			}
			if pc.br.Buffered() == pc.br.Size() {
				return fmt.Errorf("%w: head over %d bytes", errBadResponse, pc.br.Size())
			}
		}
		fc.waitUpstream(pc)
		_, err := pc.br.Peek(pc.br.Buffered() + 1)
		if fc.waitDone() {
			return errClientGone
		}
		if err != nil {
			switch {
			case isTimeout(err):
				return fmt.Errorf("proxy-read-timeout: %w", err)
			case first:
				return fmt.Errorf("%w: %v", errStale, err)
			}
			return fmt.Errorf("read response: %w", err)
		}
	}
}

// armRead sets the upstream read deadline d from now (give or take an
// eighth of it, at most a second, so that most requests set none).
func (pc *h1Conn) armRead(d time.Duration) {
	if d <= 0 {
		if !pc.rdl.IsZero() {
			pc.rdl = time.Time{}
			_ = pc.c.SetReadDeadline(pc.rdl)
		}
		return
	}
	want := time.Now().Add(d)
	if pc.rdl.IsZero() || pc.rdl.Before(want.Add(-min(d/8, time.Second))) || pc.rdl.After(want) {
		pc.rdl = want
		_ = pc.c.SetReadDeadline(want)
	}
}

// upstreamFailed answers a request no endpoint answered: 413 for a
// chunked body over proxy-body-size, 504 for a timeout, else 502.
func (fc *fconn) upstreamFailed(fr *fastReq, path string, err error, keep bool) fastResult {
	h := fc.s.H
	if errors.Is(err, errBodyTooLarge) {
		fc.writeSimple(413, "413 request entity too large (proxy-body-size)", false)
		return fastResult{status: 413}
	}
	code := 502
	if err != nil && isTimeout(err) {
		code = 504
	}
	if err == nil {
		err = fmt.Errorf("backend %s has no ready endpoint", fr.be.Name)
	}
	h.log.Warn("upstream error", "backend", fr.be.Name, "host", fr.host, "path", path, "status", code, "err", fmt.Errorf("backend %s: %w", fr.be.Name, err))
	keep = keep && !fc.s.closing.Load()
	fc.writeSimple(code, "", keep)
	return fastResult{status: code, keep: keep}
}

var crlf = []byte("\r\n")

// writeSimple writes a short answer of the ALB itself; a text body gets
// http.Error's headers.
func (fc *fconn) writeSimple(code int, text string, keep bool) {
	w := fc.bw
	switch code {
	case 413:
		_, _ = w.WriteString("HTTP/1.1 413 Request Entity Too Large\r\n")
	case 502:
		_, _ = w.WriteString("HTTP/1.1 502 Bad Gateway\r\n")
	default:
		_, _ = w.WriteString("HTTP/1.1 504 Gateway Timeout\r\n")
	}
	_, _ = w.Write(httpDate())
	if text != "" {
		_, _ = w.WriteString("Content-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\n")
		text += "\n"
	}
	_, _ = w.WriteString("Content-Length: ")
	_, _ = w.Write(appendInt(fc.hdrBuf[:0], int64(len(text))))
	_, _ = w.Write(crlf)
	if !keep {
		_, _ = w.WriteString("Connection: close\r\n")
	}
	_, _ = w.Write(crlf)
	_, _ = w.WriteString(text)
}
