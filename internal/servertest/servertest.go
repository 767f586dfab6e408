// Package servertest runs a real Muster server in-process for tests of the
// SDK and the command line: the same code as `muster serve --dev`, on a free
// loopback port.
package servertest

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/muster-registry/muster/server"
)

// Options adjust the server; the zero value is a --dev server.
type Options struct {
	// DataDir, when set, makes the server durable in that directory
	// (Raft listens on a free loopback port); otherwise it runs in memory.
	DataDir string
	// RetainEvents is passed to the server (0: the default).
	RetainEvents int
	// RaftAddr fixes the Raft address of a durable server (default: a free
	// loopback port), for a data directory prepared for that address.
	RaftAddr string
	// HTTPAddr fixes the HTTP address (default: a free loopback port), so a
	// restarted server can be found where its clients left it.
	HTTPAddr string
	// Logger receives the server's logs; nil discards them.
	Logger *slog.Logger
}

// Server is a running in-process server.
type Server struct {
	// URL is the base address, e.g. http://127.0.0.1:41234 (without /v1).
	URL    string
	cancel context.CancelFunc
	done   chan error
}

// Start runs a server until the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	addr := opts.HTTPAddr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	cfg := server.Config{HTTPAddr: addr, Dev: opts.DataDir == "", DataDir: opts.DataDir,
		RetainEvents: opts.RetainEvents, Logger: opts.Logger, NodeID: "test"}
	if !cfg.Dev {
		if cfg.RaftAddr = opts.RaftAddr; cfg.RaftAddr == "" {
			cfg.RaftAddr = FreeAddr(t)
		}
	}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatalf("servertest: starting server: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{URL: "http://" + srv.Addr(), cancel: cancel, done: make(chan error, 1)}
	go func() { s.done <- srv.Run(ctx) }()
	select {
	case <-srv.Ready():
	case err := <-s.done:
		cancel()
		t.Fatalf("servertest: server stopped before it was ready: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("servertest: server not ready after 30s")
	}
	t.Cleanup(func() { s.Stop(t) })
	return s
}

// Stop shuts the server down gracefully and waits for it; it is safe to call twice.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	if s.cancel == nil {
		return
	}
	s.cancel()
	s.cancel = nil
	if err := <-s.done; err != nil {
		t.Errorf("servertest: server stopped with error: %v", err)
	}
}
