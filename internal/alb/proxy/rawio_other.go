//go:build !linux

package proxy

import "net"

// rawConn returns c unchanged where raw socket calls are not built.
func rawConn(c net.Conn) net.Conn { return c }

// rawTCP is never made here (see rawio_linux.go).
type rawTCP struct{ net.Conn }

func (*rawTCP) holdNextWrite() {}
