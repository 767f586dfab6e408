package raftnode

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	bolt "go.etcd.io/bbolt"
)

// Seed describes the Raft state to write into an empty data directory, as a
// one-voter node would leave it after applying entries up to Index and
// taking a snapshot there, with Tail logged after the snapshot and not yet
// applied. It exists to build large data directories for measuring restarts
// (a million registrations through the API would take hours of fsyncs).
type Seed struct {
	// DataDir, NodeID and RaftAddr are those the node will be opened with.
	DataDir  string
	NodeID   string
	RaftAddr string
	// Snapshot is the FSM's state after entry Index.
	Snapshot raft.FSMSnapshot
	Index    uint64
	// Tail are the commands of entries Index+1, Index+2, ….
	Tail [][]byte
}

// WriteSeed writes s into s.DataDir, which must hold no Raft state yet, in
// the layout that Open reads: the cluster bootstrapped with the node as its
// only voter (entry 1), a file snapshot at Index in term 1, and the tail in
// the log.
func WriteSeed(s Seed) error {
	if s.Index < 2 {
		return fmt.Errorf("raftnode: seed index %d: entry 1 is the bootstrap configuration", s.Index)
	}
	dir := filepath.Join(s.DataDir, "raft")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("raftnode: creating %s: %w", dir, err)
	}
	store, err := raftboltdb.New(raftboltdb.Options{
		Path:        filepath.Join(dir, "raft.db"),
		BoltOptions: &bolt.Options{Timeout: time.Second, NoFreelistSync: true},
	})
	if err != nil {
		return fmt.Errorf("raftnode: opening the log: %w", err)
	}
	defer store.Close()
	snaps, err := raft.NewFileSnapshotStore(dir, 2, io.Discard)
	if err != nil {
		return fmt.Errorf("raftnode: opening snapshots: %w", err)
	}
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(s.NodeID)
	conf := raft.Configuration{Servers: []raft.Server{{ID: rc.LocalID, Address: raft.ServerAddress(s.RaftAddr)}}}
	// The snapshot's metadata encodes the peers through a transport; the
	// TCP transport that Open uses encodes an address as itself, as this does.
	_, trans := raft.NewInmemTransport(raft.ServerAddress(s.RaftAddr))
	defer trans.Close()
	if err := raft.BootstrapCluster(rc, store, store, snaps, trans, conf); err != nil {
		return fmt.Errorf("raftnode: bootstrapping the seed: %w", err)
	}
	sink, err := snaps.Create(raft.SnapshotVersionMax, s.Index, 1, conf, 1, trans)
	if err != nil {
		return fmt.Errorf("raftnode: creating the seed snapshot: %w", err)
	}
	if err := s.Snapshot.Persist(sink); err != nil {
		return fmt.Errorf("raftnode: writing the seed snapshot: %w", err)
	}
	s.Snapshot.Release()
	logs := make([]*raft.Log, len(s.Tail))
	for i, data := range s.Tail {
		logs[i] = &raft.Log{Index: s.Index + 1 + uint64(i), Term: 1, Type: raft.LogCommand, Data: data, AppendedAt: time.Now()}
	}
	if len(logs) > 0 {
		if err := store.StoreLogs(logs); err != nil {
			return fmt.Errorf("raftnode: writing the seed log: %w", err)
		}
	}
	return nil
}
