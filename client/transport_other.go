//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly || solaris)

package client

import "net"

// canProbe tells whether probe can see an idle connection's state.
const canProbe = false

// probe would look at an idle connection's socket; without a non-blocking
// peek on this platform it says every idle connection is open, and a
// request on one the server closed fails and is retried under net/http's
// rules.
type probe struct{}

func (p *probe) init(net.Conn) {}

// open reports true: this platform cannot tell.
func (p *probe) open() bool { return true }
