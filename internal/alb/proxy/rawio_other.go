//go:build !linux || !(amd64 || arm64)

package proxy

import (
	"errors"
	"net"
)

// rawConn returns c unchanged where raw socket calls are not built.
func rawConn(c net.Conn) net.Conn { return c }

// rawTCP is never made here (see rawio_linux.go).
type rawTCP struct{ net.Conn }

func (*rawTCP) holdNextWrite() {}

// readSession is never called here: rawConn makes no rawTCP.
func (*rawTCP) readSession(func() bool) error { return errors.ErrUnsupported }
