//go:build !linux

package proxy

import "net"

// rawConn returns c unchanged where raw socket calls are not built.
func rawConn(c net.Conn) net.Conn { return c }
