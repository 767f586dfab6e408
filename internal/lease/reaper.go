package lease

import (
	"cmp"
	"slices"
	"time"

	"github.com/muster-registry/muster/internal/state"
)

// Expired delivers batches of registrations whose deadlines passed, oldest
// deadline first, while the table is leader. The receiver commits each batch
// (an ExpireInstances command); a batch it fails to commit, or has not taken
// when leadership ends, is retried on the next promotion, when every deadline
// is reset.
func (t *Table) Expired() <-chan []state.Expiry { return t.expired }

// SetLeader starts (true) or stops (false) accepting heartbeats and reaping.
// On promotion every deadline is reset to now + its timeout.
func (t *Table) SetLeader(leader bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if leader == t.leader.Load() {
		return
	}
	if !leader {
		t.leader.Store(false)
		close(t.cancel)
		<-t.reaped
		t.cancel, t.reaped = nil, nil
		// Batches nobody took belong to the term that ended. Dropped here,
		// they are found again after the next promotion resets the deadlines;
		// kept, they would expire instances that may have been renewing with
		// another leader meanwhile.
		for drained := false; !drained; {
			select {
			case <-t.expired:
			default:
				drained = true
			}
		}
		return
	}
	t.restored.Store(nil)
	t.resetDeadlines()
	t.cancel = make(chan struct{})
	t.reaped = make(chan struct{})
	t.leader.Store(true)
	go t.reap(t.cancel, t.reaped)
}

// IsLeader reports whether the table accepts heartbeats.
func (t *Table) IsLeader() bool { return t.leader.Load() }

func (t *Table) resetDeadlines() {
	now := t.now()
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		s.resetWheel()
		s.each(func(e *entry) {
			// The last beat is unknown after a restart; show the moment the
			// deadline was pushed, so expires_at - timeout = last_heartbeat_at.
			e.lastBeat = now.UnixNano()
			e.deadline = now.Add(e.timeout()).UnixNano()
			e.expiring = false
			s.schedule(e, now.UnixNano())
		})
		s.mu.Unlock()
	}
	t.changedAll()
}

// reapEvery is the reaper's period. The wheel's ticks are longer: each
// round takes the ticks that have ended out of the wheel, and the passed
// deadlines out of the tick under way, so that an expiry waits at most
// reapEvery for the reaper rather than a whole tick.
const reapEvery = tick / 5

// reap wakes every reapEvery, on the multiples of reapEvery, and sends the
// registrations whose deadline passed.
func (t *Table) reap(cancel <-chan struct{}, reaped chan<- struct{}) {
	defer close(reaped)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	done := tickOf(t.now()) - 1 // every tick up to and including done is reaped
	var due []dueEntry          // reused from round to round
	for {
		nowNS := t.now().UnixNano()
		timer.Reset(time.Duration(int64(reapEvery) - nowNS%int64(reapEvery)))
		select {
		case <-cancel:
			return
		case <-timer.C:
		}
		now := t.now()
		// Tick b holds deadlines in ((b-1)·tick, b·tick]; it is over once now >= b·tick.
		upTo := max(floorDiv(now.UnixNano(), int64(tick)), done)
		due = t.collect(due[:0], done+1, upTo, now)
		done = upTo
		sortDue(due)
		for rest := due; len(rest) > 0; {
			n := min(len(rest), t.batch)
			select {
			case t.expired <- expiries(rest[:n]):
			case <-cancel:
				return
			}
			rest = rest[n:]
		}
		clear(due) // let the records go
	}
}

// sortDue puts due in the order expiries are sent: oldest deadline first,
// then by namespace, service and id. Ten thousand sort in a millisecond or
// two: the entries are small, and keys are compared only between equal
// deadlines.
func sortDue(due []dueEntry) {
	slices.SortFunc(due, func(a, b dueEntry) int {
		if c := cmp.Compare(a.deadline, b.deadline); c != 0 {
			return c
		}
		return cmp.Or(cmp.Compare(a.inst.Namespace, b.inst.Namespace), cmp.Compare(a.inst.Service, b.inst.Service), cmp.Compare(a.inst.ID, b.inst.ID))
	})
}

// expiries is a batch of the receiver's own.
func expiries(due []dueEntry) []state.Expiry {
	batch := make([]state.Expiry, len(due))
	for i, d := range due {
		batch[i] = state.Expiry{Key: d.inst.Key(), RegIndex: d.inst.RegIndex, Deadline: unixTime(d.deadline)}
	}
	return batch
}

// dueEntry is a registration whose deadline passed: its record, as it was
// when collected, and its deadline truncated to the millisecond (Unix ns).
type dueEntry struct {
	deadline int64
	inst     *state.Instance
}

// collect takes the wheel's ticks from..to out of every shard, and looks
// into tick to+1, the one under way, without taking it. It appends to due
// the registrations among them whose deadline has passed, marking them
// expiring so that no heartbeat revives them and no later round sends them
// again.
func (t *Table) collect(due []dueEntry, from, to int64, now time.Time) []dueEntry {
	nowNS := now.UnixNano()
	take := func(refs []ref) {
		for _, r := range refs {
			if nowNS < r.deadline {
				continue // not yet (and if it moved, it moved later)
			}
			e := r.e
			if e.removed || e.expiring || nowNS < e.deadline {
				continue
			}
			e.expiring = true
			due = append(due, dueEntry{deadline: floorMilli(e.deadline), inst: e.inst})
		}
	}
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		for b := from; b <= to; b++ {
			if refs, ok := s.wheel[b]; ok {
				delete(s.wheel, b)
				take(refs)
			}
		}
		if s.peekTick != to+1 {
			s.peekTick, s.peek = to+1, s.wheel[to+1]
		}
		take(s.peek)
		s.mu.Unlock()
	}
	return due
}

// floorDiv is a / b rounded down (b > 0).
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}

// floorMilli truncates Unix nanoseconds to the millisecond, as
// time.Time.Truncate(time.Millisecond) does.
func floorMilli(ns int64) int64 {
	const ms = int64(time.Millisecond)
	return ns - ((ns%ms)+ms)%ms
}

// Retry re-arms registrations whose expiry could not be committed, so the
// reaper sends them again on its next tick. Registrations that were renewed,
// replaced or removed meanwhile are left alone.
func (t *Table) Retry(items []state.Expiry) {
	next := tickOf(t.now()) + 1
	for _, it := range items {
		s, h := t.shardFor(it.Key)
		s.mu.Lock()
		if e := s.get(h, it.Key); e != nil && e.inst.RegIndex == it.RegIndex && e.expiring {
			e.expiring = false
			s.file(next, e)
		}
		s.mu.Unlock()
	}
}
