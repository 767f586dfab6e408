package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/raft"
	"github.com/spf13/cobra"

	"github.com/muster-registry/muster/internal/fsm"
	"github.com/muster-registry/muster/internal/lease"
	"github.com/muster-registry/muster/internal/raftnode"
	"github.com/muster-registry/muster/internal/state"
)

// newSeedCmd is a hidden command for measuring restarts: it writes a data
// directory holding many registrations (a snapshot plus a log tail), which
// `muster serve` then restores, without registering each through the API.
func newSeedCmd() *cobra.Command {
	var (
		o       seedOptions
		dataDir string
	)
	cmd := &cobra.Command{
		Use:   "seed-data-dir",
		Short: "Write a data directory holding many instances (for restart measurements)",
		Example: `  muster seed-data-dir --data-dir /tmp/m1 --instances 1000000 --raft-addr 127.0.0.1:17411
  muster serve --data-dir /tmp/m1 --raft-addr 127.0.0.1:17411`,
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			start := time.Now()
			if err := seedDataDir(dataDir, o); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %d instances (%d in the log after the snapshot) into %s in %s\n",
				o.instances, o.logEntries, dataDir, time.Since(start).Round(time.Millisecond))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dataDir, "data-dir", "", "directory to create (missing or empty; required)")
	f.IntVar(&o.instances, "instances", 1_000_000, "instances to register")
	f.IntVar(&o.services, "services", 1000, "services to spread them over")
	f.IntVar(&o.logEntries, "log-entries", 1000, "of the instances, how many are registered in the log after the snapshot")
	f.StringVar(&o.nodeID, "node-id", "muster-1", "node id the server will run as")
	f.StringVar(&o.raftAddr, "raft-addr", "127.0.0.1:7411", "Raft address the server will run with")
	return cmd
}

type seedOptions struct {
	instances, services, logEntries int
	nodeID, raftAddr                string
}

// seedInstance is registration i of a seeded directory: the shape of the
// memory target (4 tags, 4 metadata pairs), as BenchmarkMillionInstances
// registers them.
func seedInstance(i, services int) state.Instance {
	return state.Instance{
		Namespace: "prod", Service: fmt.Sprintf("service-%04d", i%services), ID: fmt.Sprintf("instance-%07d", i),
		Address: fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), Port: 8080,
		Tags: []string{"http", "v2", "zone-a", fmt.Sprintf("shard-%d", i%64)},
		Metadata: state.MetadataOf(map[string]string{
			"region": "eu-west-1", "zone": "eu-west-1a",
			"version": fmt.Sprintf("1.%d.%d", i%7, i%13), "host": fmt.Sprintf("node-%05d", i%20000),
		}),
		HeartbeatTimeout: 30, Token: lease.NewToken(),
	}
}

// seedDataDir applies the registrations through the FSM, as a replica
// would, snapshots the state after all but the last o.logEntries, and
// writes the snapshot and the rest of the log with raftnode.WriteSeed.
func seedDataDir(dataDir string, o seedOptions) error {
	if o.instances < 1 || o.services < 1 || o.logEntries < 0 || o.logEntries >= o.instances {
		return errors.New("seed-data-dir: want --instances >= 1, --services >= 1 and 0 <= --log-entries < --instances")
	}
	if dataDir == "" || o.nodeID == "" || o.raftAddr == "" {
		return errors.New("seed-data-dir: --data-dir, --node-id and --raft-addr must not be empty")
	}
	// Only a new directory: seeding must never touch a server's data.
	if entries, err := os.ReadDir(dataDir); err == nil && len(entries) > 0 {
		return fmt.Errorf("seed-data-dir: %s is not empty; seed into a new directory", dataDir)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("seed-data-dir: %w", err)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("seed-data-dir: %w", err)
	}
	f := fsm.New(state.New(0, nil))
	now := time.Now().UTC().Truncate(time.Millisecond)
	snapAt := o.instances - o.logEntries
	seed := raftnode.Seed{DataDir: dataDir, NodeID: o.nodeID, RaftAddr: o.raftAddr, Index: uint64(snapAt) + 1}
	for i := range o.instances {
		data, err := fsm.Encode(&fsm.RegisterInstance{Time: now, Instance: seedInstance(i, o.services)})
		if err != nil {
			return err
		}
		if i >= snapAt {
			seed.Tail = append(seed.Tail, data)
			continue
		}
		// Entry 1 is the bootstrap configuration.
		if res := f.Apply(&raft.Log{Index: uint64(i) + 2, Term: 1, Type: raft.LogCommand, Data: data}).(fsm.Result); res.Err != nil {
			return fmt.Errorf("seed-data-dir: registration %d: %w", i, res.Err)
		}
	}
	snap, err := f.Snapshot()
	if err != nil {
		return fmt.Errorf("seed-data-dir: %w", err)
	}
	seed.Snapshot = snap
	if err := raftnode.WriteSeed(seed); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dataDir, "node-id"), []byte(o.nodeID+"\n"), 0o600); err != nil {
		return fmt.Errorf("seed-data-dir: %w", err)
	}
	return nil
}
