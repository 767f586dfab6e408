// Package raftnode wires hashicorp/raft for Muster: the log and stable store
// in bbolt, file snapshots, the TCP transport, and self-bootstrap of a
// one-voter cluster on first start. A single node is a cluster of one, so the
// code path for one node and for several is the same.
package raftnode

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/muster-registry/muster/internal/registry"
)

// Config configures a Node.
type Config struct {
	// NodeID names this node in the cluster.
	NodeID string
	// RaftAddr is the address the Raft transport listens on.
	RaftAddr string
	// DataDir holds the log (raft.db) and snapshots; unused with Dev.
	DataDir string
	// Dev keeps everything in memory: nothing survives the process.
	Dev bool
	// Logger receives raft's messages.
	Logger *slog.Logger
	// SnapshotThreshold is how many log entries trigger a snapshot (0: 8192).
	SnapshotThreshold uint64
	// SnapshotInterval is how often raft checks the threshold (0: 120 s);
	// each check waits a random time between it and twice it.
	SnapshotInterval time.Duration
}

// Node is one Raft member.
//
// Concurrency: safe for concurrent use; Close once, after which Apply fails.
type Node struct {
	raft      *raft.Raft
	cfg       Config
	transport io.Closer
	logStore  io.Closer
	leaderCh  chan bool
}

// ErrDataDir is returned when the data directory holds state that cannot be used.
var ErrDataDir = errors.New("raftnode: unusable data directory")

// Open starts a node applying committed commands to fsm. On first start
// (no existing state) it bootstraps a cluster with itself as the only voter.
// A data directory with snapshots but no log is refused rather than started
// empty.
func Open(cfg Config, fsm raft.FSM) (*Node, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	hlog := newHCLog(cfg.Logger)
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.NodeID)
	rc.Logger = hlog
	// A one-node cluster elects itself after HeartbeatTimeout; keep start-up quick.
	rc.HeartbeatTimeout = 500 * time.Millisecond
	rc.ElectionTimeout = 500 * time.Millisecond
	rc.LeaderLeaseTimeout = 250 * time.Millisecond
	rc.BatchApplyCh = true
	rc.MaxAppendEntries = 512
	if cfg.SnapshotThreshold > 0 {
		rc.SnapshotThreshold = cfg.SnapshotThreshold
	}
	if cfg.SnapshotInterval > 0 {
		rc.SnapshotInterval = cfg.SnapshotInterval
	}
	leaderCh := make(chan bool, 16)
	rc.NotifyCh = leaderCh

	n := &Node{cfg: cfg, leaderCh: leaderCh}
	var (
		logs   raft.LogStore
		stable raft.StableStore
		snaps  raft.SnapshotStore
		trans  raft.Transport
	)
	if cfg.Dev {
		mem := raft.NewInmemStore()
		logs, stable = mem, mem
		snaps = raft.NewInmemSnapshotStore()
		_, t := raft.NewInmemTransport(raft.ServerAddress(cfg.RaftAddr))
		trans = t
		n.transport = t
	} else {
		dir := filepath.Join(cfg.DataDir, "raft")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("raftnode: creating %s: %w", dir, err)
		}
		dbPath := filepath.Join(dir, "raft.db")
		_, statErr := os.Stat(dbPath)
		hasDB := statErr == nil
		fss, err := raft.NewFileSnapshotStoreWithLogger(dir, 2, hlog)
		if err != nil {
			return nil, fmt.Errorf("raftnode: opening snapshots in %s: %w", dir, err)
		}
		if list, _ := fss.List(); len(list) > 0 && !hasDB {
			return nil, fmt.Errorf("%w: %s has snapshots but no log (raft.db is missing); refusing to start empty — restore raft.db or move the directory aside", ErrDataDir, dir)
		}
		store, err := raftboltdb.New(raftboltdb.Options{
			Path:        dbPath,
			BoltOptions: &bolt.Options{Timeout: time.Second, NoFreelistSync: true},
		})
		if err != nil {
			if errors.Is(err, bolterrors.ErrTimeout) {
				return nil, fmt.Errorf("%w: %s is locked by another process (is another muster running on this data directory?)", ErrDataDir, dbPath)
			}
			return nil, fmt.Errorf("%w: opening %s: %v", ErrDataDir, dbPath, err)
		}
		logs, stable, snaps = store, store, fss
		n.logStore = store
		addr, err := net.ResolveTCPAddr("tcp", cfg.RaftAddr)
		if err != nil {
			store.Close()
			return nil, fmt.Errorf("raftnode: raft address %q: %w", cfg.RaftAddr, err)
		}
		t, err := raft.NewTCPTransportWithLogger(cfg.RaftAddr, addr, 3, 10*time.Second, hlog)
		if err != nil {
			store.Close()
			return nil, fmt.Errorf("raftnode: listening on %s: %w", cfg.RaftAddr, err)
		}
		trans = t
		n.transport = t
	}

	existing, err := raft.HasExistingState(logs, stable, snaps)
	if err != nil {
		n.closeStores()
		return nil, fmt.Errorf("%w: reading raft state: %v", ErrDataDir, err)
	}
	r, err := raft.NewRaft(rc, fsm, logs, stable, snaps, trans)
	if err != nil {
		n.closeStores()
		return nil, fmt.Errorf("raftnode: starting raft: %w", err)
	}
	n.raft = r
	if !existing {
		boot := raft.Configuration{Servers: []raft.Server{{ID: rc.LocalID, Address: trans.LocalAddr()}}}
		if err := r.BootstrapCluster(boot).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			_ = r.Shutdown().Error()
			n.closeStores()
			return nil, fmt.Errorf("raftnode: bootstrapping: %w", err)
		}
	}
	return n, nil
}

func (n *Node) closeStores() {
	if n.transport != nil {
		n.transport.Close()
	}
	if n.logStore != nil {
		n.logStore.Close()
	}
}

// Apply proposes a command and waits until it is committed and applied,
// returning the FSM's response. It fails with registry.ErrNotLeader on a
// follower.
func (n *Node) Apply(data []byte, timeout time.Duration) (any, error) {
	return n.ApplyAsync(data, timeout)()
}

// ApplyAsync proposes a command and returns once Raft has queued it (or
// timeout has passed); wait then blocks until the command is committed and
// applied, and answers as Apply does. Commands proposed one after another
// from one goroutine are committed and applied in that order, and several
// may be in flight: Raft writes the next while the FSM applies the last.
func (n *Node) ApplyAsync(data []byte, timeout time.Duration) (wait func() (any, error)) {
	f := n.raft.Apply(data, timeout)
	return func() (any, error) {
		if err := f.Error(); err != nil {
			if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) || errors.Is(err, raft.ErrLeadershipTransferInProgress) {
				return nil, fmt.Errorf("raftnode: apply: %w (%v)", registry.ErrNotLeader, err)
			}
			return nil, fmt.Errorf("raftnode: apply: %w", err)
		}
		return f.Response(), nil
	}
}

// LeaderChanges delivers true when this node becomes leader and false when it stops being leader.
func (n *Node) LeaderChanges() <-chan bool { return n.leaderCh }

// IsLeader reports whether this node is the leader now.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// WaitLeader waits up to timeout for this cluster to have a leader.
func (n *Node) WaitLeader(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if addr, _ := n.raft.LeaderWithID(); addr != "" {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("raftnode: no leader after %s", timeout)
}

// Barrier waits until every entry committed before it has been applied to
// the FSM: after a restart, reads then reflect the whole log.
func (n *Node) Barrier(timeout time.Duration) error {
	if err := n.raft.Barrier(timeout).Error(); err != nil {
		return fmt.Errorf("raftnode: barrier: %w", err)
	}
	return nil
}

// Info describes the node for the status route.
type Info struct {
	ID, Role, Leader string
	AppliedIndex     uint64
}

// Info returns the node's role, leader and applied index.
func (n *Node) Info() Info {
	addr, id := n.raft.LeaderWithID()
	leader := string(id)
	if leader == "" {
		leader = string(addr)
	}
	return Info{ID: n.cfg.NodeID, Role: n.raft.State().String(), Leader: leader, AppliedIndex: n.raft.AppliedIndex()}
}

// Snapshot asks raft for a snapshot now.
func (n *Node) Snapshot() error { return n.raft.Snapshot().Error() }

// Close shuts raft down and closes the transport and stores.
func (n *Node) Close() error {
	err := n.raft.Shutdown().Error()
	n.closeStores()
	if err != nil {
		return fmt.Errorf("raftnode: shutdown: %w", err)
	}
	return nil
}
