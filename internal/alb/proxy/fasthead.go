package proxy

import (
	"bytes"
	"strconv"
)

// This file is the request-head parser of the fast HTTP/1.1 path
// (fastconn.go). It accepts only plain, unambiguous HTTP/1.1 requests;
// anything else (HTTP/1.0, absolute or escaped targets, obs-fold, bare
// LF, Expect, Upgrade, a Trailer declaration, duplicate or conflicting
// framing headers, bytes net/http would reject) is "slow": the
// connection goes to net/http with the bytes read so far, which answers
// exactly as before (400, 431, 100 Continue, upgrades ...).

// headStatus is the outcome of parseHead.
type headStatus int

const (
	headMore headStatus = iota // incomplete: read more
	headOK                     // a complete fast-path head
	headSlow                   // hand the connection to net/http
)

// field is one header line: name and value (trimmed), pointing into the
// read buffer.
type field struct{ name, value []byte }

// reqHead is a parsed request head. Its slices point into the
// connection's read buffer: valid until the next read from it.
type reqHead struct {
	n              int // length of the head, final CRLF included
	method, target []byte
	path, query    []byte // target split at '?'; query without it
	hasQuery       bool
	host           []byte
	fields         []field // every header line, in order
	contentLength  int64   // -1: none
	chunked        bool
	close          bool // Connection: close
	xfp, ua        []byte
	xff            [][]byte // X-Forwarded-For values
}

func (h *reqHead) reset() {
	fs, xff := h.fields[:0], h.xff[:0]
	*h = reqHead{fields: fs, xff: xff, contentLength: -1}
}

// parseHead parses the head at the start of b. headMore means b holds
// no complete head yet (and nothing seen so far is slow).
func parseHead(b []byte, h *reqHead) headStatus {
	h.reset()
	line, rest, st := nextLine(b)
	if st != headOK {
		return st
	}
	if st := h.requestLine(line); st != headOK {
		return st
	}
	hosts := 0
	for {
		line, rest, st = nextLine(rest)
		if st != headOK {
			return st
		}
		if len(line) == 0 {
			break
		}
		f, ok := splitField(line)
		if !ok {
			return headSlow
		}
		switch {
		case eqFold(f.name, "host"):
			hosts++
			h.host = f.value
		case eqFold(f.name, "content-length"):
			if h.contentLength >= 0 {
				return headSlow
			}
			n, ok := parseLength(f.value)
			if !ok {
				return headSlow
			}
			h.contentLength = n
		case eqFold(f.name, "transfer-encoding"):
			if h.chunked || !eqFold(f.value, "chunked") {
				return headSlow
			}
			h.chunked = true
		case eqFold(f.name, "connection"):
			if !h.connection(f.value) {
				return headSlow
			}
		case eqFold(f.name, "expect"), eqFold(f.name, "upgrade"), eqFold(f.name, "trailer"),
			eqFold(f.name, "http2-settings"):
			return headSlow
		case eqFold(f.name, "x-forwarded-proto"):
			if h.xfp == nil {
				h.xfp = f.value
			}
		case eqFold(f.name, "x-forwarded-for"):
			h.xff = append(h.xff, f.value)
		case eqFold(f.name, "user-agent"):
			h.ua = f.value
		}
		h.fields = append(h.fields, f)
	}
	if hosts != 1 || !validHost(h.host) || (h.chunked && h.contentLength >= 0) {
		return headSlow
	}
	h.n = len(b) - len(rest)
	return headOK
}

// nextLine returns the line at the start of b without its CRLF. A bare
// LF is slow (net/http accepts it; this parser does not).
func nextLine(b []byte) (line, rest []byte, st headStatus) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return nil, nil, headMore
	}
	if i == 0 || b[i-1] != '\r' {
		return nil, nil, headSlow
	}
	return b[:i-1], b[i+1:], headOK
}

// requestLine parses "METHOD /path?query HTTP/1.1".
func (h *reqHead) requestLine(l []byte) headStatus {
	sp := bytes.IndexByte(l, ' ')
	if sp <= 0 {
		return headSlow
	}
	h.method = l[:sp]
	for _, c := range h.method {
		if !isToken(c) {
			return headSlow
		}
	}
	if string(h.method) == "CONNECT" || string(h.method) == "PRI" {
		return headSlow
	}
	l = l[sp+1:]
	sp = bytes.IndexByte(l, ' ')
	if sp <= 0 || string(l[sp+1:]) != "HTTP/1.1" || l[0] != '/' {
		return headSlow
	}
	h.target = l[:sp]
	h.path = h.target
	if q := bytes.IndexByte(h.target, '?'); q >= 0 {
		h.path, h.query, h.hasQuery = h.target[:q], h.target[q+1:], true
	}
	for _, c := range h.path {
		if !pathSafe[c] {
			return headSlow
		}
	}
	for _, c := range h.query {
		if c <= ' ' || c >= 0x7f || c == '#' {
			return headSlow
		}
	}
	return headOK
}

// connection reads a Connection header: close and keep-alive are
// understood; any other token (upgrade, hop-by-hop header names) is slow.
func (h *reqHead) connection(v []byte) bool {
	for len(v) > 0 {
		var tok []byte
		tok, v, _ = bytes.Cut(v, []byte{','})
		tok = trimOWS(tok)
		switch {
		case len(tok) == 0, eqFold(tok, "keep-alive"):
		case eqFold(tok, "close"):
			h.close = true
		default:
			return false
		}
	}
	return true
}

// splitField splits "Name: value"; ok is false for an invalid name or
// value (net/http answers 400) or an obs-fold continuation line.
func splitField(l []byte) (field, bool) {
	i := bytes.IndexByte(l, ':')
	if i <= 0 {
		return field{}, false
	}
	name := l[:i]
	for _, c := range name {
		if !isToken(c) {
			return field{}, false
		}
	}
	v := trimOWS(l[i+1:])
	for _, c := range v {
		if (c < ' ' && c != '\t') || c == 0x7f {
			return field{}, false
		}
	}
	return field{name: name, value: v}, true
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// parseLength parses a Content-Length value: digits only.
func parseLength(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// eqFold compares b with the lower-case ASCII string s, ignoring case.
func eqFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// validHost accepts the usual host[:port] bytes (letters, digits,
// "-._~" and IPv6 brackets); others go to net/http's own check.
func validHost(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !hostSafe[c] {
			return false
		}
	}
	return true
}

var (
	tokenChars = "!#$%&'*+-.^_`|~"
	// pathSafe are the path bytes url.URL.EscapedPath keeps as they are,
	// so the path is forwarded byte for byte as net/http would send it.
	pathSafe = charSet("-_.~$&+,/:;=@")
	hostSafe = charSet("-._~:[]")
	tokenSet = charSet(tokenChars)
)

func charSet(extra string) (s [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		s[c], s[c-'a'+'A'] = true, true
	}
	for c := '0'; c <= '9'; c++ {
		s[c] = true
	}
	for i := range len(extra) {
		s[extra[i]] = true
	}
	return s
}

func isToken(c byte) bool { return tokenSet[c] }

// appendInt appends n in decimal.
func appendInt(b []byte, n int64) []byte { return strconv.AppendInt(b, n, 10) }

// respHead is a parsed upstream response head (slices into the upstream
// connection's read buffer).
type respHead struct {
	n             int
	code          int
	status        []byte // "200 OK": the status line after the version
	http10        bool
	fields        []field
	contentLength int64 // -1: none
	chunked       bool
	close         bool     // the upstream connection cannot be reused
	drop          [][]byte // header names listed in Connection
	hasDate       bool
	hasHSTS       bool
}

// parseRespHead parses an upstream response head; headSlow means a
// malformed one.
func parseRespHead(b []byte, r *respHead) headStatus {
	fs, drop := r.fields[:0], r.drop[:0]
	*r = respHead{fields: fs, drop: drop, contentLength: -1}
	line, rest, st := nextLine(b)
	if st != headOK {
		return st
	}
	switch {
	case bytes.HasPrefix(line, []byte("HTTP/1.1 ")):
	case bytes.HasPrefix(line, []byte("HTTP/1.0 ")):
		r.http10, r.close = true, true
	default:
		return headSlow
	}
	r.status = line[9:]
	if len(r.status) < 3 || (len(r.status) > 3 && r.status[3] != ' ') {
		return headSlow
	}
	for _, c := range r.status[:3] {
		if c < '0' || c > '9' {
			return headSlow
		}
		r.code = r.code*10 + int(c-'0')
	}
	if r.code < 100 {
		return headSlow
	}
	for _, c := range r.status[3:] {
		if (c < ' ' && c != '\t') || c == 0x7f {
			return headSlow
		}
	}
	for {
		line, rest, st = nextLine(rest)
		if st != headOK {
			return st
		}
		if len(line) == 0 {
			break
		}
		f, ok := splitField(line)
		if !ok {
			return headSlow
		}
		switch {
		case eqFold(f.name, "content-length"):
			n, ok := parseLength(f.value)
			if !ok || (r.contentLength >= 0 && r.contentLength != n) {
				return headSlow
			}
			r.contentLength = n
		case eqFold(f.name, "transfer-encoding"):
			if !eqFold(f.value, "chunked") {
				return headSlow
			}
			r.chunked = true
		case eqFold(f.name, "connection"):
			v := f.value
			for len(v) > 0 {
				var tok []byte
				tok, v, _ = bytes.Cut(v, []byte{','})
				if tok = trimOWS(tok); eqFold(tok, "close") {
					r.close = true
				} else if len(tok) > 0 {
					r.drop = append(r.drop, tok)
				}
			}
		case eqFold(f.name, "date"):
			r.hasDate = true
		case eqFold(f.name, "strict-transport-security"):
			r.hasHSTS = true
		}
		r.fields = append(r.fields, f)
	}
	if r.chunked {
		r.contentLength = -1 // chunked wins (RFC 9112 section 6.3)
	}
	r.n = len(b) - len(rest)
	return headOK
}

// hopField reports whether a response header is hop-by-hop: not
// forwarded (Trailer is kept for a chunked answer, whose trailers are
// forwarded as they come).
func (r *respHead) hopField(name []byte) bool {
	switch {
	case eqFold(name, "connection"), eqFold(name, "proxy-connection"), eqFold(name, "keep-alive"),
		eqFold(name, "proxy-authenticate"), eqFold(name, "proxy-authorization"), eqFold(name, "te"),
		eqFold(name, "transfer-encoding"), eqFold(name, "upgrade"):
		return true
	case eqFold(name, "trailer"):
		return !r.chunked
	}
	for _, d := range r.drop {
		if bytes.EqualFold(name, d) {
			return true
		}
	}
	return false
}

// skipRequestField reports whether a client header is not copied
// upstream: hop-by-hop headers, and those the proxy sets itself.
func skipRequestField(name []byte) bool {
	if len(name) == 0 {
		return true
	}
	switch name[0] | 0x20 {
	case 'h':
		return eqFold(name, "host")
	case 'c':
		return eqFold(name, "connection") || eqFold(name, "content-length")
	case 'k':
		return eqFold(name, "keep-alive")
	case 'p':
		return eqFold(name, "proxy-connection") || eqFold(name, "proxy-authenticate") || eqFold(name, "proxy-authorization")
	case 't':
		return eqFold(name, "te") || eqFold(name, "transfer-encoding") || eqFold(name, "trailer")
	case 'x':
		return eqFold(name, "x-forwarded-for") || eqFold(name, "x-real-ip") || eqFold(name, "x-forwarded-host") ||
			eqFold(name, "x-forwarded-proto") || eqFold(name, "x-forwarded-port")
	}
	return false
}
