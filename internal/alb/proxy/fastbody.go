package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"sync/atomic"
	"time"
)

// errBodyTooLarge: a chunked request body went over proxy-body-size.
var errBodyTooLarge = errors.New("request body over proxy-body-size")

// maxTrailerLines bounds the trailer section of a chunked request body.
const maxTrailerLines = 64

// sendBody copies the client's request body upstream: a Content-Length
// body as it is, a chunked one decoded and chunked again (its trailers,
// undeclared since a Trailer header is slow, are dropped as net/http
// drops them). No read deadline applies to it (as net/http without
// ReadTimeout).
func (fc *fconn) sendBody(pc *h1Conn, fr *fastReq) error {
	if !fc.head.chunked {
		for n := fc.head.contentLength; n > 0; {
			if fc.br.Buffered() == 0 {
				fc.deadline(0)
				if _, err := fc.br.Peek(1); err != nil {
					return fmt.Errorf("read request body: %w", err)
				}
			}
			b, _ := fc.br.Peek(int(min(n, int64(fc.br.Buffered()))))
			if _, err := pc.bw.Write(b); err != nil {
				return fmt.Errorf("write request body: %w", err)
			}
			_, _ = fc.br.Discard(len(b))
			n -= int64(len(b))
		}
		return nil
	}
	fc.deadline(0)
	cr := httputil.NewChunkedReader(fc.br)
	buf := buffers.Get().(*[]byte)
	defer buffers.Put(buf)
	var total int64
	for {
		n, rerr := cr.Read(*buf)
		if n > 0 {
			if total += int64(n); fr.limit > 0 && total > fr.limit {
				return errBodyTooLarge
			}
			fc.hdrBuf = append(fmt.Appendf(fc.hdrBuf[:0], "%x", n), crlf...)
			_, _ = pc.bw.Write(fc.hdrBuf)
			_, _ = pc.bw.Write((*buf)[:n])
			if _, err := pc.bw.Write(crlf); err != nil {
				return fmt.Errorf("write request body: %w", err)
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return fmt.Errorf("read request body: %w", rerr)
		}
	}
	for i := 0; ; i++ {
		if i == maxTrailerLines {
			return fmt.Errorf("read request trailers: over %d lines", maxTrailerLines)
		}
		line, err := fc.br.ReadSlice('\n')
		if err != nil {
			return fmt.Errorf("read request trailers: %w", err)
		}
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			break
		}
	}
	_, err := pc.bw.WriteString("0\r\n\r\n")
	return err
}

// copyResponse writes the upstream answer (head in fc.resp) to the
// client: its fields but hop-by-hop ones, Date and HSTS when missing,
// the body with its length or chunked. It returns the body bytes and
// whether the upstream connection can be reused.
func (fc *fconn) copyResponse(pc *h1Conn, fr *fastReq, isHead, closeClient bool) (int64, bool, error) {
	r, w := &fc.resp, fc.bw
	noBody := isHead || r.code == http.StatusNoContent || r.code == http.StatusNotModified
	chunkedOut := !noBody && r.contentLength < 0
	_, _ = w.WriteString("HTTP/1.1 ")
	_, _ = w.Write(r.status)
	if len(r.status) == 3 { // no reason phrase: net/http wrote its own
		_, _ = w.WriteString(" " + http.StatusText(r.code))
	}
	_, _ = w.Write(crlf)
	for _, f := range r.fields {
		if r.hopField(f.name) || (r.chunked && eqFold(f.name, "content-length")) {
			continue
		}
		_, _ = w.Write(f.name)
		_, _ = w.WriteString(": ")
		_, _ = w.Write(f.value)
		_, _ = w.Write(crlf)
	}
	if !r.hasDate {
		_, _ = w.Write(httpDate())
	}
	if fr.hsts && !r.hasHSTS {
		_, _ = w.WriteString("Strict-Transport-Security: " + HSTSValue + "\r\n")
	}
	if chunkedOut {
		_, _ = w.WriteString("Transfer-Encoding: chunked\r\n")
	}
	if closeClient {
		_, _ = w.WriteString("Connection: close\r\n")
	}
	if _, err := w.Write(crlf); err != nil {
		return 0, false, err
	}
	_, _ = pc.br.Discard(r.n)
	reusable := !r.close
	switch {
	case noBody:
		return 0, reusable, nil
	case r.contentLength >= 0:
		n, err := fc.copyN(pc, r.contentLength)
		return n, reusable, err
	case r.chunked:
		n, err := fc.copyChunked(pc)
		return n, reusable, err
	}
	n, err := fc.copyUntilEOF(pc)
	return n, false, err
}

// waitUp makes upstream bytes available, flushing what the client has
// been sent so far before blocking (streams stream). Body reads have no
// deadline, as before.
func (fc *fconn) waitUp(pc *h1Conn) error {
	if err := fc.bw.Flush(); err != nil {
		return err
	}
	pc.armRead(0)
	fc.waitUpstream(pc)
	_, err := pc.br.Peek(1)
	if fc.waitDone() {
		return errClientGone
	}
	if err != nil {
		return fmt.Errorf("read response body: %w", err)
	}
	return nil
}

func (fc *fconn) copyN(pc *h1Conn, n int64) (int64, error) {
	var done int64
	for done < n {
		if pc.br.Buffered() == 0 {
			if err := fc.waitUp(pc); err != nil {
				return done, err
			}
		}
		b, _ := pc.br.Peek(int(min(n-done, int64(pc.br.Buffered()))))
		if _, err := fc.bw.Write(b); err != nil {
			return done, err
		}
		_, _ = pc.br.Discard(len(b))
		done += int64(len(b))
	}
	return done, nil
}

// copyChunked copies a chunked body as it comes: sizes, extensions and
// trailers included.
func (fc *fconn) copyChunked(pc *h1Conn) (int64, error) {
	var total int64
	for {
		line, err := fc.upLine(pc)
		if err != nil {
			return total, err
		}
		size, ok := chunkSize(line)
		if !ok {
			return total, fmt.Errorf("%w: chunk size %q", errBadResponse, line)
		}
		_, _ = fc.bw.Write(line)
		if size == 0 {
			for {
				if line, err = fc.upLine(pc); err != nil {
					return total, err
				}
				_, _ = fc.bw.Write(line)
				if len(bytes.TrimRight(line, "\r\n")) == 0 {
					return total, nil
				}
			}
		}
		n, err := fc.copyN(pc, size)
		total += n
		if err != nil {
			return total, err
		}
		if line, err = fc.upLine(pc); err != nil {
			return total, err
		}
		if len(bytes.TrimRight(line, "\r\n")) != 0 {
			return total, fmt.Errorf("%w: no CRLF after a chunk", errBadResponse)
		}
		_, _ = fc.bw.Write(crlf)
	}
}

// upLine reads one upstream line (valid until the next read).
func (fc *fconn) upLine(pc *h1Conn) ([]byte, error) {
	if b, _ := pc.br.Peek(pc.br.Buffered()); bytes.IndexByte(b, '\n') < 0 {
		if err := fc.waitUp(pc); err != nil {
			return nil, err
		}
	}
	line, err := pc.br.ReadSlice('\n')
	if err != nil {
		return nil, fmt.Errorf("read response body: %w", err)
	}
	return line, nil
}

func chunkSize(line []byte) (int64, bool) {
	var n int64
	i := 0
	for ; i < len(line); i++ {
		c := line[i]
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			if i == 0 || (c != ';' && c != '\r' && c != '\n' && c != ' ' && c != '\t') {
				return 0, false
			}
			return n, true
		}
		if i >= 15 {
			return 0, false
		}
		n = n<<4 | int64(d)
	}
	return 0, false
}

// copyUntilEOF copies a body that ends when the upstream closes,
// chunked to the client.
func (fc *fconn) copyUntilEOF(pc *h1Conn) (int64, error) {
	var total int64
	for {
		if pc.br.Buffered() == 0 {
			if err := fc.waitUp(pc); err != nil {
				if errors.Is(err, io.EOF) {
					_, err = fc.bw.WriteString("0\r\n\r\n")
					return total, err
				}
				return total, err
			}
		}
		b, _ := pc.br.Peek(pc.br.Buffered())
		fc.hdrBuf = append(fmt.Appendf(fc.hdrBuf[:0], "%x", len(b)), crlf...)
		_, _ = fc.bw.Write(fc.hdrBuf)
		_, _ = fc.bw.Write(b)
		if _, err := fc.bw.Write(crlf); err != nil {
			return total, err
		}
		_, _ = pc.br.Discard(len(b))
		total += int64(len(b))
	}
}

type dateLine struct {
	sec  int64
	line []byte
}

var dateNow atomic.Pointer[dateLine]

// httpDate returns the "Date: ...\r\n" line of the current second.
func httpDate() []byte {
	now := time.Now()
	if d := dateNow.Load(); d != nil && d.sec == now.Unix() {
		return d.line
	}
	d := &dateLine{sec: now.Unix(), line: append(now.UTC().AppendFormat([]byte("Date: "), http.TimeFormat), crlf...)}
	dateNow.Store(d)
	return d.line
}
