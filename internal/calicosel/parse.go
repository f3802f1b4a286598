package calicosel

import (
	"fmt"
	"strings"
)

type tokKind int

const (
	tIdent tokKind = iota
	tString
	tPunct // ( ) { } , ! && || == !=
)

type token struct {
	kind tokKind
	text string
	pos  int
}

func (t token) String() string {
	if t.kind == tString {
		return fmt.Sprintf("string %q", t.text)
	}
	return fmt.Sprintf("%q", t.text)
}

type parser struct {
	src  string
	toks []token
	pos  int
}

func (p *parser) errf(format string, a ...any) error {
	at := len(p.src)
	if p.pos < len(p.toks) {
		at = p.toks[p.pos].pos
	}
	return &Error{Selector: p.src, Pos: at, Msg: fmt.Sprintf(format, a...)}
}

func isKeyChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("_./-", c) >= 0
}

func (p *parser) lex() error {
	s := p.src
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '\'' || c == '"':
			j := strings.IndexByte(s[i+1:], c)
			if j < 0 {
				return &Error{Selector: s, Pos: i, Msg: "string without its closing quote " + string(c)}
			}
			p.toks = append(p.toks, token{tString, s[i+1 : i+1+j], i})
			i += j + 2
		case strings.HasPrefix(s[i:], "&&"), strings.HasPrefix(s[i:], "||"),
			strings.HasPrefix(s[i:], "=="), strings.HasPrefix(s[i:], "!="):
			p.toks = append(p.toks, token{tPunct, s[i : i+2], i})
			i += 2
		case strings.IndexByte("(){},!", c) >= 0:
			p.toks = append(p.toks, token{tPunct, s[i : i+1], i})
			i++
		case isKeyChar(c):
			j := i
			for j < len(s) && isKeyChar(s[j]) {
				j++
			}
			p.toks = append(p.toks, token{tIdent, s[i:j], i})
			i = j
		default:
			msg := fmt.Sprintf("unexpected character %q", c)
			if c == '=' || c == '&' || c == '|' {
				msg += "; the operators are ==, !=, &&, ||"
			}
			return &Error{Selector: s, Pos: i, Msg: msg}
		}
	}
	return nil
}

func (p *parser) peek() (token, bool) {
	if p.pos < len(p.toks) {
		return p.toks[p.pos], true
	}
	return token{}, false
}

func (p *parser) accept(kind tokKind, text string) bool {
	if t, ok := p.peek(); ok && t.kind == kind && t.text == text {
		p.pos++
		return true
	}
	return false
}

func (p *parser) expect(kind tokKind, text, what string) error {
	if p.accept(kind, text) {
		return nil
	}
	if t, ok := p.peek(); ok {
		return p.errf("expected %s, found %s", what, t)
	}
	return p.errf("expected %s, found the end of the selector", what)
}

func (p *parser) or() (node, error) {
	e, err := p.and()
	if err != nil {
		return nil, err
	}
	terms := or{e}
	for p.accept(tPunct, "||") {
		e, err := p.and()
		if err != nil {
			return nil, err
		}
		terms = append(terms, e)
	}
	if len(terms) == 1 {
		return terms[0], nil
	}
	return terms, nil
}

func (p *parser) and() (node, error) {
	e, err := p.unary()
	if err != nil {
		return nil, err
	}
	terms := and{e}
	for p.accept(tPunct, "&&") {
		e, err := p.unary()
		if err != nil {
			return nil, err
		}
		terms = append(terms, e)
	}
	if len(terms) == 1 {
		return terms[0], nil
	}
	return terms, nil
}

func (p *parser) unary() (node, error) {
	if p.accept(tPunct, "!") {
		e, err := p.unary()
		if err != nil {
			return nil, err
		}
		return not{e}, nil
	}
	if p.accept(tPunct, "(") {
		e, err := p.or()
		if err != nil {
			return nil, err
		}
		if err := p.expect(tPunct, ")", "a closing )"); err != nil {
			return nil, err
		}
		return e, nil
	}
	return p.atom()
}

func (p *parser) atom() (node, error) {
	t, ok := p.peek()
	if !ok {
		return nil, p.errf("expected an expression (a label, has(k), all()), found the end of the selector")
	}
	if t.kind != tIdent {
		return nil, p.errf("expected an expression (a label, has(k), all()), found %s", t)
	}
	p.pos++
	switch t.text {
	case "all", "global":
		if p.accept(tPunct, "(") {
			if err := p.expect(tPunct, ")", ") after "+t.text+"("); err != nil {
				return nil, err
			}
			if t.text == "all" {
				return all{}, nil
			}
			return global{}, nil
		}
	case "has":
		if p.accept(tPunct, "(") {
			k, ok := p.peek()
			if !ok || k.kind != tIdent {
				return nil, p.errf("expected a label key in has(...)")
			}
			p.pos++
			if err := p.expect(tPunct, ")", ") after has("+k.text); err != nil {
				return nil, err
			}
			return has{k.text}, nil
		}
	}
	key := t.text
	switch {
	case p.accept(tPunct, "=="):
		v, err := p.str(key)
		return cmp{key: key, val: v, op: opEq}, err
	case p.accept(tPunct, "!="):
		v, err := p.str(key)
		return cmp{key: key, val: v, op: opNe}, err
	case p.accept(tIdent, "in"):
		return p.set(key, false)
	case p.accept(tIdent, "not"):
		if err := p.expect(tIdent, "in", "in after not"); err != nil {
			return nil, err
		}
		return p.set(key, true)
	case p.accept(tIdent, "contains"):
		v, err := p.str(key)
		return cmp{key: key, val: v, op: opContains}, err
	case p.accept(tIdent, "starts"):
		if err := p.expect(tIdent, "with", "with after starts"); err != nil {
			return nil, err
		}
		v, err := p.str(key)
		return cmp{key: key, val: v, op: opStarts}, err
	case p.accept(tIdent, "ends"):
		if err := p.expect(tIdent, "with", "with after ends"); err != nil {
			return nil, err
		}
		v, err := p.str(key)
		return cmp{key: key, val: v, op: opEnds}, err
	}
	if nt, ok := p.peek(); ok {
		return nil, p.errf("expected an operator after label %s (==, !=, in, not in, contains, starts with, ends with), found %s", key, nt)
	}
	return nil, p.errf("label %s alone is no expression: write has(%s) or %s == 'value'", key, key, key)
}

func (p *parser) str(key string) (string, error) {
	t, ok := p.peek()
	if !ok || t.kind != tString {
		return "", p.errf("expected a quoted value after label %s's operator, e.g. %s == 'value'", key, key)
	}
	p.pos++
	return t.text, nil
}

func (p *parser) set(key string, neg bool) (node, error) {
	if err := p.expect(tPunct, "{", "{ after in"); err != nil {
		return nil, err
	}
	vals := map[string]bool{}
	if !p.accept(tPunct, "}") {
		for {
			v, err := p.str(key)
			if err != nil {
				return nil, err
			}
			vals[v] = true
			if p.accept(tPunct, "}") {
				break
			}
			if err := p.expect(tPunct, ",", ", or } in the set"); err != nil {
				return nil, err
			}
		}
	}
	return in{key: key, vals: vals, not: neg}, nil
}
