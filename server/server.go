// Package server runs a Muster node: it assembles the state, the lease
// table, the state machine, the Raft node and the HTTP API, and is the only
// package that knows them all. `muster serve` is a thin wrapper around it;
// a Go program can embed a server the same way, and set hooks that take
// precedence over the declarative revision policies.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/muster-registry/muster/api"
	"github.com/muster-registry/muster/internal/fsm"
	"github.com/muster-registry/muster/internal/httpapi"
	"github.com/muster-registry/muster/internal/lease"
	"github.com/muster-registry/muster/internal/raftnode"
	"github.com/muster-registry/muster/internal/state"
)

// Version is the server's version, reported by /v1/status.
const Version = "0.1.0"

// Config configures a Server. The zero values of the optional fields are the
// documented defaults (docs/operations.md).
type Config struct {
	HTTPAddr string // default 127.0.0.1:7410
	RaftAddr string // default 127.0.0.1:7411
	DataDir  string // default ./muster-data
	// NodeID names the node; empty means the id recorded in the data
	// directory, or on first start the host name.
	NodeID string
	// Dev keeps everything in memory: nothing is written to disk.
	Dev bool
	// RetainEvents is how many of the newest events are kept (default 100,000).
	RetainEvents int
	// SnapshotThreshold is how many log entries trigger a snapshot (default 8192).
	SnapshotThreshold uint64
	// SnapshotInterval is how often raft checks whether to snapshot (default 120 s).
	SnapshotInterval time.Duration
	Logger           *slog.Logger

	// SelectRevision, when set, picks the revision for a request that names
	// none (GET /v1/services/{ns}/{name}, /v1/resolve) before the service's
	// policy is consulted; returning ok false defers to the policy. It runs
	// on every such read and must be quick and safe for concurrent use.
	SelectRevision func(ns, name string, revisions []api.Revision, req api.SelectionRequest) (tag string, ok bool)
	// IsDefault, when set, decides on the leader whether a revision
	// registered without is_default becomes the default; ok false defers to
	// the default rule. Its answer is recorded as an explicit is_default.
	IsDefault func(ns, name string, rev api.RegisterRevisionRequest, existing []api.Revision) (isDefault, ok bool)
}

func (c *Config) defaults() {
	if c.HTTPAddr == "" {
		c.HTTPAddr = "127.0.0.1:7410"
	}
	if c.RaftAddr == "" {
		c.RaftAddr = "127.0.0.1:7411"
	}
	if c.DataDir == "" {
		c.DataDir = "muster-data"
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Server is a running Muster node.
type Server struct {
	cfg     Config
	log     *slog.Logger
	store   *state.Store
	leases  *lease.Table
	journal *lease.FileJournal
	lock    *os.File
	node    *raftnode.Node
	api     *httpapi.Handler
	metrics *httpapi.Metrics
	http    *http.Server
	ln      net.Listener
	started time.Time

	ready chan struct{}
	stop  chan struct{}
	wg    sync.WaitGroup
}

// New opens the data directory, starts Raft and binds the HTTP address. It
// does not serve yet: call Run.
func New(cfg Config) (_ *Server, err error) {
	cfg.defaults()
	// s is not the named result: "return nil, err" must not nil it before
	// the deferred cleanup runs.
	s := &Server{cfg: cfg, log: cfg.Logger, started: time.Now(), ready: make(chan struct{}), stop: make(chan struct{})}
	defer func() {
		if err != nil {
			s.closeAll()
		}
	}()

	if !cfg.Dev {
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("server: creating data directory: %w", err)
		}
		// Lock first: a second process must not touch the journal or the log.
		if s.lock, err = lockDataDir(cfg.DataDir); err != nil {
			return nil, err
		}
		if s.cfg.NodeID, err = nodeID(cfg.DataDir, cfg.NodeID); err != nil {
			return nil, err
		}
		if s.journal, err = lease.OpenFileJournal(filepath.Join(cfg.DataDir, "tokens.journal"), s.log, nil); err != nil {
			return nil, err
		}
	} else if s.cfg.NodeID == "" {
		s.cfg.NodeID = "dev"
	}
	opts := lease.Options{Logger: s.log}
	if s.journal != nil {
		opts.Journal = s.journal
	}
	if s.leases, err = lease.New(opts); err != nil {
		return nil, err
	}
	if s.journal != nil {
		s.journal.SetLive(s.leases.LiveTokens)
		s.journal.SetLiveCount(s.leases.Len)
	}
	s.store = state.New(cfg.RetainEvents, s.leases)

	s.metrics = httpapi.NewMetrics(map[string]func() float64{
		"muster_instances":   func() float64 { _, _, _, n := s.store.Counts(); return float64(n) },
		"muster_services":    func() float64 { _, n, _, _ := s.store.Counts(); return float64(n) },
		"muster_event_index": func() float64 { return float64(s.store.Index()) },
	})

	s.ln, err = net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("server: listening on %s: %w", cfg.HTTPAddr, err)
	}
	raftAddr := cfg.RaftAddr
	if cfg.Dev {
		raftAddr = "dev"
	}
	s.node, err = raftnode.Open(raftnode.Config{
		NodeID: s.cfg.NodeID, RaftAddr: raftAddr, DataDir: cfg.DataDir, Dev: cfg.Dev,
		Logger: s.log, SnapshotThreshold: cfg.SnapshotThreshold, SnapshotInterval: cfg.SnapshotInterval,
	}, fsm.New(s.store))
	if err != nil {
		return nil, err
	}
	s.api = httpapi.New(httpapi.Config{
		Store: s.store, Leases: s.leases, Proposer: proposer{s}, Status: s.status,
		Logger: s.log, Metrics: s.metrics,
		SelectRevision: cfg.SelectRevision, IsDefault: cfg.IsDefault,
	})
	s.http = &http.Server{
		Handler:           s.api,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	return s, nil
}

// nodeID returns the node id: the one recorded in the data directory (which
// a different flag value may not contradict), or the flag, or the host name,
// recorded on first start. A node must keep its id: Raft knows it by it.
func nodeID(dataDir, flag string) (string, error) {
	path := filepath.Join(dataDir, "node-id")
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		rec := strings.TrimSpace(string(b))
		if flag != "" && flag != rec {
			return "", fmt.Errorf("%w: %s belongs to node %q, not %q", raftnode.ErrDataDir, dataDir, rec, flag)
		}
		return rec, nil
	case !errors.Is(err, os.ErrNotExist):
		return "", fmt.Errorf("server: reading %s: %w", path, err)
	}
	id := flag
	if id == "" {
		if h, err := os.Hostname(); err == nil && h != "" {
			id = h
		} else {
			id = "muster-1"
		}
	}
	if err := os.WriteFile(path, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("server: recording node id: %w", err)
	}
	return id, nil
}

// Ready is closed once Run serves requests.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Addr returns the address the HTTP API listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Run waits for the cluster to be ready, serves until ctx is cancelled, then
// shuts down gracefully: in-flight requests finish (watchers are told to end),
// then Raft and the stores close.
func (s *Server) Run(ctx context.Context) error {
	if err := s.node.WaitLeader(30 * time.Second); err != nil {
		s.closeAll()
		return err
	}
	if s.node.IsLeader() {
		if err := s.node.Barrier(30 * time.Second); err != nil {
			s.closeAll()
			return err
		}
	}
	s.wg.Add(2)
	go s.followLeadership()
	go s.proposeExpiries()
	// The leader's notification may have come before we listened: catch up.
	if s.node.IsLeader() {
		s.leases.SetLeader(true)
	}

	served := make(chan error, 1)
	go func() { served <- s.http.Serve(s.ln) }()
	where, raftAddr := s.cfg.DataDir, s.cfg.RaftAddr
	if s.cfg.Dev {
		where, raftAddr = "memory (--dev: nothing is kept)", "in-memory"
	} else if abs, err := filepath.Abs(where); err == nil {
		where = abs
	}
	close(s.ready)
	s.log.Info("muster ready", "http", "http://"+s.Addr(), "raft", raftAddr, "data", where, "node", s.cfg.NodeID, "events", s.store.Index())

	var err error
	select {
	case <-ctx.Done():
	case err = <-served:
		err = fmt.Errorf("server: serving HTTP: %w", err)
	}
	s.log.Info("shutting down", "reason", context.Cause(ctx))
	s.api.Drain()
	shutCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if e := s.http.Shutdown(shutCtx); e != nil {
		s.log.Warn("in-flight requests did not finish in time", "err", e)
	}
	s.closeAll()
	s.log.Info("stopped")
	return err
}

// closeAll releases everything New and Run acquired; it is safe on a
// partly built server.
func (s *Server) closeAll() {
	select {
	case <-s.stop:
		return
	default:
		close(s.stop)
	}
	if s.leases != nil {
		s.leases.SetLeader(false)
	}
	if s.node != nil {
		if err := s.node.Close(); err != nil {
			s.log.Error("closing raft", "err", err)
		}
	}
	s.wg.Wait()
	if s.journal != nil {
		if err := s.journal.Close(); err != nil {
			s.log.Error("closing token journal", "err", err)
		}
	}
	if s.ln != nil {
		s.ln.Close()
	}
	if s.lock != nil {
		s.lock.Close() // releases the flock
	}
}

// lockDataDir takes an exclusive lock on dataDir/LOCK for the life of the
// process, so two servers never share a data directory.
func lockDataDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "LOCK"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("server: opening lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s is in use by another muster process", raftnode.ErrDataDir, dir)
		}
		return nil, fmt.Errorf("server: locking %s: %w", dir, err)
	}
	return f, nil
}

// followLeadership turns the lease table on when this node leads and off
// when it stops leading. Before taking heartbeats, a new leader applies
// everything committed before it (a barrier), so its table knows every live
// registration.
func (s *Server) followLeadership() {
	defer s.wg.Done()
	for {
		select {
		case <-s.stop:
			return
		case leader := <-s.node.LeaderChanges():
			if leader {
				err, stopped := s.unlessStopped(func() error { return s.node.Barrier(30 * time.Second) })
				if stopped {
					return
				}
				if err != nil {
					s.log.Error("leader barrier failed; not taking heartbeats", "err", err)
					continue
				}
				s.log.Info("leading: deadlines reset to now + timeout")
			}
			s.leases.SetLeader(leader)
		}
	}
}

// expiryPipeline is how many expiry commands may be in flight at once.
// While one is applied, Raft writes and syncs the next, and the committer
// encodes the one after: in an expiry wave the log's I/O and the hand-offs
// between goroutines no longer add up batch after batch.
const expiryPipeline = 4

// pendingExpiry is an expiry batch proposed to Raft.
type pendingExpiry struct {
	batch []state.Expiry
	start time.Time
	wait  func() (any, error) // nil when encoding failed (err)
	err   error
}

// proposeExpiries commits the lease table's expiry batches as commands, in
// the order the table sends them, with up to expiryPipeline in flight, so
// an expiry storm becomes a paced series of commands rather than a flood.
// A batch that fails to commit is handed back to the table and sent again,
// after a pause that grows while failures repeat.
func (s *Server) proposeExpiries() {
	defer s.wg.Done()
	// The channel holds the batches proposed and not yet settled, all but
	// the one settleExpiries waits on.
	inflight := make(chan pendingExpiry, expiryPipeline-1)
	settled := make(chan struct{})
	go func() {
		defer close(settled)
		s.settleExpiries(inflight)
	}()
	defer func() {
		close(inflight)
		<-settled
	}()
	for {
		select {
		case <-s.stop:
			return
		case batch := <-s.leases.Expired():
			p := pendingExpiry{batch: batch, start: time.Now()}
			data, err := fsm.Encode(&fsm.ExpireInstances{Time: p.start.UTC().Truncate(time.Millisecond), Items: batch})
			if err != nil {
				p.err = err
			} else {
				// Raft queues it at once unless its queue is full.
				p.wait = s.node.ApplyAsync(data, 10*time.Second)
			}
			select {
			case inflight <- p:
			case <-s.stop:
				return
			}
		}
	}
}

// settleExpiries waits for each proposed expiry batch in turn, until
// inflight is closed or the server stops.
func (s *Server) settleExpiries(inflight <-chan pendingExpiry) {
	pause := 100 * time.Millisecond
	for p := range inflight {
		var resp any
		err := p.err
		if err == nil {
			var stopped bool
			err, stopped = s.unlessStopped(func() (err error) {
				resp, err = p.wait()
				return err
			})
			if stopped {
				return
			}
		}
		var res fsm.Result
		if err == nil {
			var ok bool
			if res, ok = resp.(fsm.Result); !ok {
				err = fmt.Errorf("server: unexpected apply response %T", resp)
			}
		}
		if err != nil {
			s.log.Warn("committing expiries failed; retrying", "instances", len(p.batch), "retry_in", pause, "err", err)
			select {
			case <-s.stop:
				return
			case <-time.After(pause):
			}
			pause = min(2*pause, 5*time.Second)
			s.leases.Retry(p.batch)
			continue
		}
		pause = 100 * time.Millisecond
		s.metrics.CommitLatency.Observe(time.Since(p.start).Seconds())
		n, _ := res.Value.(int)
		s.metrics.Expired.Add(float64(n))
		s.log.Debug("expired instances", "count", n)
	}
}

// unlessStopped runs wait in a goroutine of its own and returns its error,
// or gives up when the server stops. Raft does not answer a future that was
// queued just as it shut down, so a background goroutine must not wait on
// one unconditionally: shutdown would wait for it forever.
func (s *Server) unlessStopped(wait func() error) (err error, stopped bool) {
	done := make(chan error, 1)
	go func() { done <- wait() }()
	select {
	case err := <-done:
		return err, false
	case <-s.stop:
		return nil, true
	}
}

func (s *Server) status() api.Status {
	info := s.node.Info()
	dir := s.cfg.DataDir
	if s.cfg.Dev {
		dir = ""
	}
	return api.Status{
		NodeID: info.ID, Role: strings.ToLower(info.Role), Leader: info.Leader, RaftIndex: info.AppliedIndex,
		Version: Version, DataDir: dir, Dev: s.cfg.Dev, UptimeSeconds: int64(time.Since(s.started).Seconds()),
	}
}

// proposer commits commands through Raft.
type proposer struct{ s *Server }

func (p proposer) Propose(cmd fsm.Command) (fsm.Result, error) {
	data, err := fsm.Encode(cmd)
	if err != nil {
		return fsm.Result{}, err
	}
	start := time.Now()
	resp, err := p.s.node.Apply(data, 10*time.Second)
	if err != nil {
		return fsm.Result{}, err
	}
	p.s.metrics.CommitLatency.Observe(time.Since(start).Seconds())
	res, ok := resp.(fsm.Result)
	if !ok {
		return fsm.Result{}, fmt.Errorf("server: unexpected apply response %T", resp)
	}
	return res, nil
}
