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
		s.wheel = make(map[int64][]*entry)
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

// reap wakes every tick and sends the registrations whose deadline passed.
func (t *Table) reap(cancel <-chan struct{}, reaped chan<- struct{}) {
	defer close(reaped)
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	done := tickOf(t.now()) - 1 // every tick up to and including done is reaped
	for {
		select {
		case <-cancel:
			return
		case <-ticker.C:
		}
		now := t.now()
		// Tick b holds deadlines in ((b-1)·tick, b·tick]; it is over once now >= b·tick.
		upTo := now.UnixMilli() / int64(tick/time.Millisecond)
		if upTo <= done {
			continue
		}
		due := t.collect(done+1, upTo, now)
		done = upTo
		// Ten thousand due in one tick sort in a few milliseconds: the
		// comparison builds no strings (cmp.Or would evaluate every key).
		slices.SortFunc(due, func(a, b state.Expiry) int {
			if c := a.Deadline.Compare(b.Deadline); c != 0 {
				return c
			}
			return cmp.Or(cmp.Compare(a.Key.Namespace, b.Key.Namespace), cmp.Compare(a.Key.Service, b.Key.Service), cmp.Compare(a.Key.ID, b.Key.ID))
		})
		for len(due) > 0 {
			n := min(len(due), t.batch)
			select {
			case t.expired <- due[:n:n]:
			case <-cancel:
				return
			}
			due = due[n:]
		}
	}
}

// collect takes the wheel's ticks from..to out of every shard and returns the
// registrations among them whose deadline has passed, marking them expiring
// so that no heartbeat revives them.
func (t *Table) collect(from, to int64, now time.Time) []state.Expiry {
	var due []state.Expiry
	nowNS := now.UnixNano()
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		for b := from; b <= to; b++ {
			refs, ok := s.wheel[b]
			if !ok {
				continue
			}
			delete(s.wheel, b)
			for _, e := range refs {
				if e.removed || e.expiring || nowNS < e.deadline {
					continue
				}
				e.expiring = true
				due = append(due, state.Expiry{Key: e.inst.Key(), RegIndex: e.inst.RegIndex, Deadline: unixTime(e.deadline).Truncate(time.Millisecond)})
			}
		}
		s.mu.Unlock()
	}
	return due
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
			s.wheel[next] = append(s.wheel[next], e)
		}
		s.mu.Unlock()
	}
}
