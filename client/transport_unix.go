//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly || solaris

package client

import (
	"net"
	"syscall"
)

// canProbe tells whether probe can see an idle connection's state.
const canProbe = true

// probe looks at an idle connection's socket without reading from it.
// net/http learns that a server closed an idle connection from the read it
// always has pending on it; the lean transport has none, so it asks the
// kernel before reusing one.
type probe struct {
	raw  syscall.RawConn // nil: the connection cannot be probed
	peek func(fd uintptr) bool
	buf  [1]byte
	ok   bool
}

func (p *probe) init(nc net.Conn) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return
	}
	p.raw = raw
	p.peek = func(fd uintptr) bool {
		// EAGAIN: nothing to read, so open and quiet (EINTR: cannot
		// tell, so the request finds out). No error and no bytes: the
		// server closed it. Bytes: something sent before any request,
		// such as a 408 before closing. Any other error: reset.
		_, _, err := syscall.Recvfrom(int(fd), p.buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		p.ok = err == syscall.EAGAIN || err == syscall.EWOULDBLOCK || err == syscall.EINTR
		return true // never wait for readability
	}
}

// open reports whether an idle connection can carry a request: the server
// has not closed it and has sent nothing since the last answer.
func (p *probe) open() bool {
	if p.raw == nil {
		return true
	}
	if err := p.raw.Read(p.peek); err != nil {
		return false
	}
	return p.ok
}
