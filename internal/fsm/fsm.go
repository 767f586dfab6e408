// Package fsm is Muster's Raft state machine: it decodes committed commands
// and applies them to the state, deterministically (no clock, randomness or
// I/O: the command carries the leader's time and tokens), and it snapshots and
// restores the state.
package fsm

import (
	"fmt"
	"io"
	"runtime/debug"

	"github.com/hashicorp/raft"

	"github.com/muster-registry/muster/api"
	"github.com/muster-registry/muster/internal/state"
)

// FSM implements raft.FSM over a state.Store.
//
// Concurrency (raft's contract): Apply, Restore and Snapshot are called from
// one goroutine; FSMSnapshot.Persist runs concurrently with later Applies,
// which is safe because state.Snapshot copies references to immutable records.
type FSM struct {
	store *state.Store
}

// New returns an FSM that applies commands to store.
func New(store *state.Store) *FSM { return &FSM{store: store} }

// Result is what Apply returns for each command: raft hands it back to the
// proposer through ApplyFuture.Response. Err is a domain error (not found,
// instance exists), decided here so that concurrent writers are ordered by
// the log.
type Result struct {
	Value any
	Err   error
}

// RevisionResult is the Value of a RegisterRevision.
type RevisionResult struct {
	Revision api.Revision
	Created  bool
}

// InstanceResult is the Value of a RegisterInstance or PatchInstance.
type InstanceResult struct {
	Instance *state.Instance
	Replaced bool
}

// Apply applies one committed log entry. A command that cannot be decoded is
// a broken invariant of the replicated log (every replica would fail the same
// way, or worse, differently): it panics rather than let replicas diverge.
func (f *FSM) Apply(l *raft.Log) any {
	cmd, err := Decode(l.Data)
	if err != nil {
		panic(fmt.Sprintf("fsm: log entry %d: %v", l.Index, err))
	}
	return f.apply(l.Index, cmd)
}

func (f *FSM) apply(index uint64, cmd Command) Result {
	switch c := cmd.(type) {
	case *RegisterRevision:
		rev, created, err := f.store.RegisterRevision(c.Time, state.Key{Namespace: c.Namespace, Name: c.Name}, c.Tag, c.IsDefault, c.Metadata)
		return Result{Value: RevisionResult{Revision: rev, Created: created}, Err: err}
	case *DeleteRevision:
		return Result{Err: f.store.DeleteRevision(c.Time, state.Key{Namespace: c.Namespace, Name: c.Name}, c.Tag)}
	case *RegisterInstance:
		inst := c.Instance
		inst.RegIndex = index
		inst.RegisteredAt = c.Time
		if d := c.ReplaceDead; d != nil && !c.Replace {
			err := f.store.TakeOver(c.Time, &inst, *d)
			return Result{Value: InstanceResult{Instance: &inst}, Err: err}
		}
		replaced, err := f.store.RegisterInstance(c.Time, &inst, c.Replace)
		return Result{Value: InstanceResult{Instance: &inst, Replaced: replaced}, Err: err}
	case *PatchInstance:
		inst, err := f.store.PatchInstance(c.Time, c.Key, c.Patch, c.LastBeat, c.Deadline)
		return Result{Value: InstanceResult{Instance: inst}, Err: err}
	case *DeregisterInstance:
		inst, err := f.store.DeregisterInstance(c.Time, c.Key)
		return Result{Value: inst, Err: err}
	case *ExpireInstances:
		return Result{Value: f.store.ExpireInstances(c.Time, c.Items)}
	case *SetPolicy:
		p := c.Policy
		return Result{Err: f.store.SetPolicy(c.Time, state.Key{Namespace: c.Namespace, Name: c.Name}, &p)}
	case *SetDefinition:
		d := c.Definition
		diff, err := f.store.SetDefinition(c.Time, state.Key{Namespace: c.Namespace, Name: c.Name}, &d)
		return Result{Value: diff, Err: err}
	case *DeletePolicy:
		return Result{Value: f.store.DeletePolicy(c.Time, state.Key{Namespace: c.Namespace, Name: c.Name})}
	default:
		panic(fmt.Sprintf("fsm: log entry %d: no apply for %T", index, cmd))
	}
}

// Snapshot captures the state for raft to persist.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	return &snapshot{snap: f.store.Snapshot()}, nil
}

// bigRestore is the snapshot size from which a restore hands the memory it
// used while decoding back to the operating system.
const bigRestore = 64 << 20

// Restore replaces the state with a persisted snapshot.
//
// Decoding a large snapshot (a restart with a million instances) leaves
// hundreds of megabytes of heap that the collector frees but the runtime
// returns to the OS only slowly, so the process would stay that much larger
// for minutes. After such a restore, one forced collection that also
// returns free memory runs in the background: it does not hold up the
// restore, and small restores (tests, small registries) skip it.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	cr := &countingReader{r: rc}
	if err := f.store.Restore(cr); err != nil {
		return fmt.Errorf("fsm: restore: %w", err)
	}
	if cr.n >= bigRestore {
		go debug.FreeOSMemory()
	}
	return nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

type snapshot struct {
	snap *state.Snapshot
}

func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := s.snap.WriteTo(sink); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("fsm: persist snapshot: %w", err)
	}
	return sink.Close()
}

func (s *snapshot) Release() {}
