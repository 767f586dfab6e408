package servertest

import (
	"net"
	"testing"
)

// FreeAddr returns a loopback address with a port that was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("servertest: finding a free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
