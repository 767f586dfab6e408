package lease_test

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/muster-registry/muster/internal/lease"
	"github.com/muster-registry/muster/internal/registry"
	"github.com/muster-registry/muster/internal/state"
)

// tick is the reaper's period (lease.tick, unexported).
const tick = 100 * time.Millisecond

func newTable(t *testing.T, opts lease.Options) *lease.Table {
	t.Helper()
	tb, err := lease.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

func instance(id string, regIndex uint64, timeoutSeconds int) *state.Instance {
	return &state.Instance{Namespace: "ns", Service: "svc", ID: id, RegIndex: regIndex, HeartbeatTimeout: int32(timeoutSeconds), Token: lease.NewToken()}
}

// heartbeat renews k and fails the test if it is refused.
func heartbeat(t *testing.T, tb *lease.Table, k state.InstanceKey, token string) (string, time.Time) {
	t.Helper()
	next, deadline, err := tb.Heartbeat(k, token)
	if err != nil {
		t.Fatalf("heartbeat of %s at %s: %v", k, time.Now().Format(time.TimeOnly+".000"), err)
	}
	return next, deadline
}

func refused(t *testing.T, tb *lease.Table, k state.InstanceKey, token string, want error) {
	t.Helper()
	if next, _, err := tb.Heartbeat(k, token); !errors.Is(err, want) {
		t.Fatalf("heartbeat of %s = %q, %v; want %v", k, next, err, want)
	}
}

// noExpiry fails the test if the reaper has an expiry batch ready once every
// goroutine of the bubble is blocked.
func noExpiry(t *testing.T, tb *lease.Table) {
	t.Helper()
	synctest.Wait()
	select {
	case b := <-tb.Expired():
		t.Fatalf("unexpected expiry at %s: %+v", time.Now().Format(time.TimeOnly+".000"), b)
	default:
	}
}

// nextBatch waits at most d (of fake time) for an expiry batch.
func nextBatch(t *testing.T, tb *lease.Table, d time.Duration) []state.Expiry {
	t.Helper()
	select {
	case b := <-tb.Expired():
		return b
	case <-time.After(d):
		t.Fatalf("no expiry within %s", d)
		return nil
	}
}

func TestNewToken(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		tok := lease.NewToken()
		b, err := base64.RawURLEncoding.DecodeString(tok)
		if err != nil || len(b) != 16 || len(tok) != 22 {
			t.Fatalf("token %q is not 16 bytes of unpadded base64url: %v", tok, err)
		}
		if seen[tok] {
			t.Fatalf("token %q repeated", tok)
		}
		seen[tok] = true
	}
}

func TestHeartbeatRotatesTheToken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tb := newTable(t, lease.Options{})
		defer tb.SetLeader(false)
		tb.SetLeader(true)
		a := instance("web-1", 1, 10)
		tb.InstanceAdded(a)
		k := a.Key()

		time.Sleep(2 * time.Second)
		tok2, deadline := heartbeat(t, tb, k, a.Token)
		if tok2 == a.Token {
			t.Fatal("heartbeat did not rotate the token")
		}
		if want := time.Now().Add(10 * time.Second); !deadline.Equal(want) {
			t.Fatalf("deadline = %s, want now + timeout = %s", deadline, want)
		}
		l, ok := tb.Get(k, 1)
		if !ok || l.Token != tok2 || !l.Deadline.Equal(deadline) || !l.LastBeat.Equal(time.Now()) || !l.Passing(time.Now()) {
			t.Fatalf("lease = %+v, %v", l, ok)
		}

		// The spent token, a made-up one and an empty one change nothing.
		time.Sleep(time.Second)
		refused(t, tb, k, a.Token, registry.ErrTokenMismatch)
		refused(t, tb, k, lease.NewToken(), registry.ErrTokenMismatch)
		refused(t, tb, k, "", registry.ErrTokenMismatch)
		if l2, _ := tb.Get(k, 1); l2 != l {
			t.Fatalf("a refused heartbeat changed the lease: %+v, was %+v", l2, l)
		}

		tok3, _ := heartbeat(t, tb, k, tok2)
		if tok3 == tok2 || tok3 == a.Token {
			t.Fatal("second heartbeat did not rotate the token")
		}
		refused(t, tb, k, tok2, registry.ErrTokenMismatch)
		if got := tb.Tokens(); len(got) != 1 || got[1] != tok3 {
			t.Fatalf("Tokens = %v, want {1: %s}", got, tok3)
		}
	})
}

func TestTokenIsBoundToItsInstance(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tb := newTable(t, lease.Options{})
		defer tb.SetLeader(false)
		tb.SetLeader(true)
		a, b := instance("web-a", 1, 10), instance("web-b", 2, 10)
		other := *a
		other.Service = "other" // same id, another service
		other.RegIndex = 3
		other.Token = lease.NewToken()
		for _, i := range []*state.Instance{a, b, &other} {
			tb.InstanceAdded(i)
		}
		refused(t, tb, b.Key(), a.Token, registry.ErrTokenMismatch)
		refused(t, tb, a.Key(), b.Token, registry.ErrTokenMismatch)
		refused(t, tb, other.Key(), a.Token, registry.ErrTokenMismatch)
		refused(t, tb, a.Key(), other.Token, registry.ErrTokenMismatch)
		// A token of A, rotated, still does not open B.
		aNext, _ := heartbeat(t, tb, a.Key(), a.Token)
		refused(t, tb, b.Key(), aNext, registry.ErrTokenMismatch)
		// Each still renews its own.
		heartbeat(t, tb, b.Key(), b.Token)
		heartbeat(t, tb, other.Key(), other.Token)
		heartbeat(t, tb, a.Key(), aNext)
	})
}

func TestHeartbeatNeedsLeadership(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tb := newTable(t, lease.Options{})
		a := instance("web-1", 1, 10)
		tb.InstanceAdded(a)
		if tb.IsLeader() {
			t.Fatal("a new table leads")
		}
		refused(t, tb, a.Key(), a.Token, registry.ErrNotLeader)
		tb.SetLeader(true)
		tb.SetLeader(true) // idempotent: one reaper
		if !tb.IsLeader() {
			t.Fatal("SetLeader(true) did not take")
		}
		tok, _ := heartbeat(t, tb, a.Key(), a.Token)
		tb.SetLeader(false)
		tb.SetLeader(false)
		refused(t, tb, a.Key(), tok, registry.ErrNotLeader)
		// Not leading, nothing expires however long it waits.
		time.Sleep(time.Minute)
		noExpiry(t, tb)
	})
}

func TestHeartbeatAfterTheDeadlineIsRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tb := newTable(t, lease.Options{})
		defer tb.SetLeader(false)
		tb.SetLeader(true) // the reaper ticks at 100 ms, 200 ms, …
		time.Sleep(50 * time.Millisecond)
		a, b := instance("web-a", 1, 3), instance("web-b", 2, 3)
		tb.InstanceAdded(a)
		tb.InstanceAdded(b)
		deadline := time.Now().Add(3 * time.Second) // 3.050 s: the reaper sees it at 3.100 s

		time.Sleep(3*time.Second - time.Millisecond)
		heartbeat(t, tb, b.Key(), b.Token) // 1 ms before its deadline: in time

		time.Sleep(time.Millisecond)
		if !time.Now().Equal(deadline) {
			t.Fatalf("clock at %s, want the deadline %s", time.Now(), deadline)
		}
		// No expiry is committed yet, but at its deadline it is dead.
		noExpiry(t, tb)
		refused(t, tb, a.Key(), a.Token, registry.ErrNotFound)
		refused(t, tb, a.Key(), lease.NewToken(), registry.ErrNotFound)
		if l, ok := tb.Get(a.Key(), 1); !ok || l.Passing(time.Now()) {
			t.Fatalf("lease at the deadline = %+v, %v; want held and not passing", l, ok)
		}

		batch := nextBatch(t, tb, time.Second)
		if len(batch) != 1 || batch[0].Key != a.Key() || !batch[0].Deadline.Equal(deadline) {
			t.Fatalf("batch = %+v, want web-a at %s", batch, deadline)
		}
		refused(t, tb, a.Key(), a.Token, registry.ErrNotFound)
	})
}

// The reaper looks into the tick under way every fifth of a tick: a
// deadline early in a tick is not held until the tick ends. Each expiry is
// sent exactly once, though its tick is looked into several times.
func TestReaperTakesPassedDeadlinesWithinATick(t *testing.T) {
	const reapEvery = tick / 5
	synctest.Test(t, func(t *testing.T) {
		tb := newTable(t, lease.Options{})
		defer tb.SetLeader(false)
		start := time.Now() // on a tick: the bubble's clock starts at midnight
		tb.SetLeader(true)
		cases := []struct {
			id    string
			after time.Duration // registered this long after start, timeout 3 s
		}{{"early", 3 * time.Millisecond}, {"middle", 33 * time.Millisecond}, {"on-a-round", 60 * time.Millisecond}, {"late", 99 * time.Millisecond}}
		for i, tc := range cases {
			time.Sleep(time.Until(start.Add(tc.after)))
			tb.InstanceAdded(instance(tc.id, uint64(i+1), 3))
		}
		for _, tc := range cases {
			deadline := start.Add(3*time.Second + tc.after)
			b := nextBatch(t, tb, 3*time.Second)
			if len(b) != 1 || b[0].Key.ID != tc.id || !b[0].Deadline.Equal(deadline) {
				t.Fatalf("batch %+v, want %s at %s", b, tc.id, deadline)
			}
			if late := time.Since(deadline); late < 0 || late > reapEvery {
				t.Errorf("%s sent %s after its deadline, want at most %s", tc.id, late, reapEvery)
			}
		}
		time.Sleep(time.Second)
		noExpiry(t, tb)
	})
}

// A deadline less than a millisecond after the end of a tick belongs to
// the next tick: the round at the end of the tick must not take it out of
// the wheel before it has passed (it was then never expired).
func TestReaperKeepsADeadlineJustAfterATick(t *testing.T) {
	const reapEvery = tick / 5
	for _, after := range []time.Duration{time.Nanosecond, 500 * time.Microsecond, time.Millisecond - time.Nanosecond, time.Millisecond} {
		t.Run(after.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				tb := newTable(t, lease.Options{})
				defer tb.SetLeader(false)
				start := time.Now() // on a tick: the bubble's clock starts at midnight
				tb.SetLeader(true)
				time.Sleep(after)
				a := instance("a", 1, 3)
				tb.InstanceAdded(a)
				deadline := start.Add(3*time.Second + after)
				b := nextBatch(t, tb, 4*time.Second)
				if len(b) != 1 || b[0].Key != a.Key() {
					t.Fatalf("batch %+v, want a", b)
				}
				if late := time.Since(deadline); late < 0 || late > reapEvery {
					t.Errorf("sent %s after its deadline, want at most %s", late, reapEvery)
				}
			})
		})
	}
}

func TestReaperDeliversExpiries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tb := newTable(t, lease.Options{Batch: 2})
		defer tb.SetLeader(false)
		start := time.Now()
		tb.SetLeader(true)
		// Five instances with deadlines 3.010 s … 3.050 s, added out of key order.
		want := map[state.InstanceKey]time.Time{}
		var order []state.InstanceKey
		for i, id := range []string{"e", "c", "a", "d", "b"} {
			time.Sleep(10 * time.Millisecond)
			inst := instance(id, uint64(i+1), 3)
			tb.InstanceAdded(inst)
			l, _ := tb.Get(inst.Key(), inst.RegIndex)
			want[inst.Key()] = l.Deadline
			order = append(order, inst.Key())
		}
		// And one whose deadline falls exactly on a tick.
		time.Sleep(time.Until(start.Add(2*time.Second + 100*time.Millisecond)))
		onTick := instance("z", 9, 3) // deadline 5.100 s
		tb.InstanceAdded(onTick)
		want[onTick.Key()] = time.Now().Add(3 * time.Second)

		time.Sleep(time.Until(start.Add(3 * time.Second)))
		noExpiry(t, tb)

		var got []state.Expiry
		for len(got) < 5 {
			b := nextBatch(t, tb, time.Second)
			if len(b) > 2 {
				t.Fatalf("batch of %d, more than Options.Batch 2", len(b))
			}
			for _, e := range b {
				if late := time.Since(e.Deadline); late < 0 || late > tick {
					t.Fatalf("%s delivered %s after its deadline, want within a tick", e.Key, late)
				}
			}
			got = append(got, b...)
		}
		for i, e := range got {
			if e.Key != order[i] {
				t.Fatalf("expiry %d is %s, want %s (oldest deadline first)", i, e.Key, order[i])
			}
			if !e.Deadline.Equal(want[e.Key]) || e.Deadline.Location() != time.UTC || e.RegIndex != uint64(i+1) {
				t.Fatalf("expiry %+v, want deadline %s and reg index %d", e, want[e.Key], i+1)
			}
		}
		noExpiry(t, tb)

		b := nextBatch(t, tb, 3*time.Second)
		if len(b) != 1 || b[0].Key != onTick.Key() || !b[0].Deadline.Equal(want[onTick.Key()]) || !time.Now().Equal(b[0].Deadline) {
			t.Fatalf("batch %+v at %s, want z exactly at its deadline %s", b, time.Now(), want[onTick.Key()])
		}
	})
}

// TestReaperResolution pins down how late an expiry may come: deadlines are
// kept in 100 ms buckets and the reaper ticks every 100 ms from the moment it
// starts, so an expiry comes at most two ticks after its deadline (at most one
// when the reaper's ticks fall on bucket boundaries), and never before it.
func TestReaperResolution(t *testing.T) {
	for _, phase := range []time.Duration{0, 30 * time.Millisecond, 99 * time.Millisecond} {
		for _, offset := range []time.Duration{0, time.Millisecond, 50 * time.Millisecond, 99 * time.Millisecond} {
			t.Run(fmt.Sprintf("phase %s offset %s", phase, offset), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					tb := newTable(t, lease.Options{})
					defer tb.SetLeader(false)
					time.Sleep(phase)
					tb.SetLeader(true)
					time.Sleep(offset)
					a := instance("web-1", 1, 3)
					tb.InstanceAdded(a)
					deadline := time.Now().Add(3 * time.Second)
					b := nextBatch(t, tb, 4*time.Second)
					late := time.Since(deadline)
					limit := 2 * tick
					if phase == 0 {
						limit = tick
					}
					if len(b) != 1 || late < 0 || late >= limit {
						t.Fatalf("batch %+v came %s after the deadline, want [0, %s)", b, late, limit)
					}
				})
			})
		}
	}
}

func TestHeartbeatInTimePreventsExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tb := newTable(t, lease.Options{})
		defer tb.SetLeader(false)
		tb.SetLeader(true)
		a := instance("web-1", 1, 3)
		tb.InstanceAdded(a)
		tok := a.Token
		var deadline time.Time
		for range 10 {
			time.Sleep(2900 * time.Millisecond)
			noExpiry(t, tb)
			tok, deadline = heartbeat(t, tb, a.Key(), tok)
		}
		b := nextBatch(t, tb, 4*time.Second)
		if len(b) != 1 || !b[0].Deadline.Equal(deadline) {
			t.Fatalf("batch %+v, want web-1 at its last deadline %s", b, deadline)
		}
	})
}

func TestPromotionResetsEveryDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tb := newTable(t, lease.Options{})
		defer tb.SetLeader(false)
		tb.SetLeader(true)
		a, b := instance("a", 1, 3), instance("b", 2, 10)
		tb.InstanceAdded(a)
		tb.InstanceAdded(b)
		tokA, _ := heartbeat(t, tb, a.Key(), a.Token)

		// Leadership is lost for a minute: every deadline passes meanwhile,
		// and a registration arrives through the log.
		tb.SetLeader(false)
		time.Sleep(30 * time.Second)
		c := instance("c", 3, 5)
		tb.InstanceAdded(c)
		refused(t, tb, c.Key(), c.Token, registry.ErrNotLeader)
		time.Sleep(30 * time.Second)
		noExpiry(t, tb)

		promoted := time.Now()
		tb.SetLeader(true)
		for _, i := range []*state.Instance{a, b, c} {
			l, ok := tb.Get(i.Key(), i.RegIndex)
			want := promoted.Add(time.Duration(i.HeartbeatTimeout) * time.Second)
			if !ok || !l.Deadline.Equal(want) || !l.Passing(promoted) {
				t.Fatalf("after promotion %s's lease = %+v, want deadline now + timeout = %s", i.ID, l, want)
			}
		}
		// No mass expiry: nothing expires before now + the shortest timeout,
		// and a heartbeat with the current token still works.
		time.Sleep(2 * time.Second)
		noExpiry(t, tb)
		_, deadlineA := heartbeat(t, tb, a.Key(), tokA) // now promoted + 5 s, as c

		// The silent ones expire one timeout after the promotion, stamped with it.
		batch := nextBatch(t, tb, 10*time.Second)
		if len(batch) != 2 || batch[0].Key != a.Key() || batch[1].Key != c.Key() ||
			!batch[0].Deadline.Equal(deadlineA) || !batch[1].Deadline.Equal(promoted.Add(5*time.Second)) {
			t.Fatalf("batch %+v, want a at %s and c at promotion + 5 s", batch, deadlineA)
		}
		batch = nextBatch(t, tb, 10*time.Second)
		if want := promoted.Add(10 * time.Second); len(batch) != 1 || batch[0].Key != b.Key() || !batch[0].Deadline.Equal(want) {
			t.Fatalf("batch %+v, want b at %s", batch, want)
		}
		if late := time.Since(batch[0].Deadline); late < 0 || late > tick {
			t.Fatalf("b expired %s after its deadline", late)
		}
		refused(t, tb, b.Key(), b.Token, registry.ErrNotFound)
		// An expiry that was taken but not committed is retried on the next
		// promotion, when the deadline is reset again.
		tb.SetLeader(false)
		tb.SetLeader(true)
		if l, ok := tb.Get(b.Key(), 2); !ok || !l.Deadline.Equal(time.Now().Add(10*time.Second)) {
			t.Fatalf("b after a second promotion = %+v, %v", l, ok)
		}
		heartbeat(t, tb, b.Key(), b.Token) // no longer marked expiring
	})
}

func TestTenThousandDueAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n, batchSize = 10_000, 700
		tb := newTable(t, lease.Options{Batch: batchSize})
		defer tb.SetLeader(false)
		tb.SetLeader(true)
		deadlines := make(map[state.InstanceKey]time.Time, n)
		for i := range n {
			if i%1000 == 0 {
				time.Sleep(time.Millisecond) // ten groups, a millisecond apart
			}
			inst := instance(fmt.Sprintf("web-%05d", i), uint64(i+1), 30)
			tb.InstanceAdded(inst)
			deadlines[inst.Key()] = time.Now().Add(30 * time.Second)
		}
		time.Sleep(29 * time.Second)
		noExpiry(t, tb)

		var all []state.Expiry
		batches := 0
		for len(all) < n {
			b := nextBatch(t, tb, 2*time.Second)
			batches++
			if len(b) == 0 || len(b) > batchSize {
				t.Fatalf("batch of %d, want 1-%d", len(b), batchSize)
			}
			for _, e := range b {
				if late := time.Since(e.Deadline); late < 0 || late > time.Second {
					t.Fatalf("%s delivered %s after its deadline", e.Key, late)
				}
				if !e.Deadline.Equal(deadlines[e.Key]) {
					t.Fatalf("%s stamped %s, want %s", e.Key, e.Deadline, deadlines[e.Key])
				}
				delete(deadlines, e.Key)
			}
			all = append(all, b...)
		}
		if len(all) != n || len(deadlines) != 0 {
			t.Fatalf("%d expiries, %d instances never expired", len(all), len(deadlines))
		}
		if batches < n/batchSize {
			t.Fatalf("%d batches", batches)
		}
		if !slices.IsSortedFunc(all, func(a, b state.Expiry) int { return a.Deadline.Compare(b.Deadline) }) {
			t.Fatal("expiries are not oldest first")
		}
		if !slices.IsSortedFunc(all, func(a, b state.Expiry) int {
			return cmp.Or(a.Deadline.Compare(b.Deadline), cmp.Compare(a.Key.ID, b.Key.ID))
		}) {
			t.Fatal("expiries of one deadline are not in key order")
		}
		noExpiry(t, tb)
	})
}

func TestInstanceRemovedStopsTracking(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tb := newTable(t, lease.Options{})
		defer tb.SetLeader(false)
		tb.SetLeader(true)
		a := instance("web-1", 5, 3)
		tb.InstanceAdded(a)

		stale := *a
		stale.RegIndex = 4 // an older registration of the same id
		tb.InstanceRemoved(&stale)
		if _, ok := tb.Get(a.Key(), 5); !ok || tb.Len() != 1 {
			t.Fatalf("removing an older registration removed the live one (%d tracked)", tb.Len())
		}

		tb.InstanceRemoved(a)
		if _, ok := tb.Get(a.Key(), 5); ok {
			t.Fatal("still tracked after InstanceRemoved")
		}
		refused(t, tb, a.Key(), a.Token, registry.ErrNotFound)
		if got := tb.Tokens(); len(got) != 0 || tb.Len() != 0 {
			t.Fatalf("Tokens = %v, Len = %d after removal", got, tb.Len())
		}
		time.Sleep(10 * time.Second)
		noExpiry(t, tb)
	})
}

func TestReRegistrationReplacesTheToken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tb := newTable(t, lease.Options{})
		defer tb.SetLeader(false)
		tb.SetLeader(true)
		old := instance("web-1", 1, 3)
		tb.InstanceAdded(old)
		oldNext, _ := heartbeat(t, tb, old.Key(), old.Token)

		time.Sleep(2 * time.Second)
		// PUT: the state ends the old registration and starts a new one.
		repl := instance("web-1", 7, 3)
		tb.InstanceRemoved(old)
		tb.InstanceAdded(repl)
		refused(t, tb, old.Key(), oldNext, registry.ErrTokenMismatch)
		refused(t, tb, old.Key(), old.Token, registry.ErrTokenMismatch)
		if _, ok := tb.Get(old.Key(), 1); ok {
			t.Fatal("the old registration is still known")
		}
		_, deadline := heartbeat(t, tb, repl.Key(), repl.Token)

		// The old registration's deadline (3 s) passes without expiring the new one.
		time.Sleep(2 * time.Second)
		noExpiry(t, tb)
		b := nextBatch(t, tb, 2*time.Second)
		if len(b) != 1 || b[0].RegIndex != 7 || !b[0].Deadline.Equal(deadline) {
			t.Fatalf("batch %+v, want the new registration at %s", b, deadline)
		}
	})
}

func TestPatchKeepsTheToken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tb := newTable(t, lease.Options{})
		defer tb.SetLeader(false)
		tb.SetLeader(true)
		a := instance("web-1", 1, 30)
		tb.InstanceAdded(a)
		tok, deadline := heartbeat(t, tb, a.Key(), a.Token)

		time.Sleep(time.Second)
		patched := *a // the state's record keeps the first token
		patched.HeartbeatTimeout = 5
		tb.InstanceAdded(&patched)
		l, ok := tb.Get(a.Key(), 1)
		if !ok || l.Token != tok || !l.Deadline.Equal(deadline) {
			t.Fatalf("after the patch lease = %+v, want token %s and deadline %s unchanged", l, tok, deadline)
		}
		refused(t, tb, a.Key(), a.Token, registry.ErrTokenMismatch)
		_, deadline = heartbeat(t, tb, a.Key(), tok)
		if want := time.Now().Add(5 * time.Second); !deadline.Equal(want) {
			t.Fatalf("deadline after the patch = %s, want now + the new timeout %s", deadline, want)
		}
	})
}

func TestReset(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tb := newTable(t, lease.Options{})
		defer tb.SetLeader(false)
		tb.SetLeader(true)
		a := instance("web-1", 1, 3)
		tb.InstanceAdded(a)
		tb.Reset()
		if _, ok := tb.Get(a.Key(), 1); ok {
			t.Fatal("Reset kept a registration")
		}
		refused(t, tb, a.Key(), a.Token, registry.ErrNotFound)
		time.Sleep(5 * time.Second)
		noExpiry(t, tb)
		// Re-added after the reset (as Restore does), it is tracked afresh.
		tb.InstanceAdded(a)
		heartbeat(t, tb, a.Key(), a.Token)
	})
}

func TestInjectedClock(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	tb := newTable(t, lease.Options{Now: func() time.Time { return now }})
	if !tb.Now().Equal(now) {
		t.Fatalf("Now = %s", tb.Now())
	}
	a := instance("web-1", 1, 3)
	tb.InstanceAdded(a)
	if l, _ := tb.Get(a.Key(), 1); !l.Deadline.Equal(now.Add(3 * time.Second)) {
		t.Fatalf("deadline = %s, want from the injected clock", l.Deadline)
	}
}

// TestDemotionDropsUntakenBatches: batches that the reaper sent while leading
// but nobody took belong to the term that ended; after the next promotion
// every deadline is reset, so they must not come out and expire instances
// that may have been heartbeating to another leader meanwhile.
func TestDemotionDropsUntakenBatches(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tb := newTable(t, lease.Options{Batch: 1})
		defer tb.SetLeader(false)
		tb.SetLeader(true)
		for i := range 3 {
			tb.InstanceAdded(instance(fmt.Sprint("web-", i), uint64(i+1), 3))
		}
		time.Sleep(4 * time.Second) // three batches wait in the channel, untaken
		synctest.Wait()
		tb.SetLeader(false)
		time.Sleep(time.Second)
		promoted := time.Now()
		tb.SetLeader(true)
		time.Sleep(3*time.Second - time.Millisecond)
		noExpiry(t, tb)
		for range 3 {
			b := nextBatch(t, tb, time.Second)
			if len(b) != 1 || !b[0].Deadline.Equal(promoted.Add(3*time.Second)) {
				t.Fatalf("batch %+v, want one expiry at the reset deadline %s", b, promoted.Add(3*time.Second))
			}
		}
	})
}

// An expiry that could not be committed is handed back with Retry and comes
// out again on the reaper's next tick, still stamped with its deadline; a
// heartbeat cannot revive it meanwhile.
func TestRetryRearmsAFailedExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tb := newTable(t, lease.Options{})
		defer tb.SetLeader(false)
		tb.SetLeader(true)
		a := instance("web-a", 7, 3)
		tb.InstanceAdded(a)
		first := nextBatch(t, tb, 4*time.Second)
		if len(first) != 1 || first[0].Key != a.Key() {
			t.Fatalf("first batch %+v", first)
		}
		refused(t, tb, a.Key(), a.Token, registry.ErrNotFound)

		tb.Retry(first)
		again := nextBatch(t, tb, 2*tick)
		if len(again) != 1 || again[0] != first[0] {
			t.Fatalf("retried batch %+v, want %+v", again, first)
		}
		noExpiry(t, tb)

		// A registration replaced meanwhile is not re-armed.
		tb.InstanceAdded(instance("web-a", 8, 3))
		tb.Retry(again)
		time.Sleep(2 * tick)
		noExpiry(t, tb)
	})
}

// ServiceVersion moves with every lease change that no state write
// reports, so a cache of a service's leases can tell it is stale.
func TestServiceVersion(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tb := newTable(t, lease.Options{})
		defer tb.SetLeader(false)
		a := instance("web-1", 1, 10)
		tb.InstanceAdded(a)
		k := a.Key()
		version := func() uint64 { return tb.ServiceVersion(k.Namespace, k.Service) }

		v := version()
		tb.SetLeader(true) // promotion resets every deadline
		if version() == v {
			t.Fatal("promotion did not change the version")
		}
		v = version()
		refused(t, tb, k, lease.NewToken(), registry.ErrTokenMismatch)
		if version() != v {
			t.Fatal("a refused heartbeat changed the version")
		}
		tok, _ := heartbeat(t, tb, k, a.Token)
		if version() == v {
			t.Fatal("a heartbeat did not change the version")
		}
		v = version()
		if r := tb.HeartbeatBatch([]lease.Beat{{Key: k, Token: tok}}); r[0].Err != nil {
			t.Fatal(r[0].Err)
		}
		if version() == v {
			t.Fatal("a batch heartbeat did not change the version")
		}
		v = version()
		tb.Reset()
		if version() == v {
			t.Fatal("Reset did not change the version")
		}
	})
}

// A renewal that cannot be journaled is undone: the version moves again,
// past the value a reader may have taken while the renewal stood.
func TestServiceVersionAfterAnUndoneRenewal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tb := newTable(t, lease.Options{Journal: failingJournal{}})
		defer tb.SetLeader(false)
		tb.SetLeader(true)
		a := instance("web-1", 1, 10)
		tb.InstanceAdded(a)
		v := tb.ServiceVersion("ns", "svc")
		if _, _, err := tb.Heartbeat(a.Key(), a.Token); err == nil {
			t.Fatal("a heartbeat whose rotation was not journaled succeeded")
		}
		if got := tb.ServiceVersion("ns", "svc"); got < v+2 {
			t.Fatalf("version after renew and undo = %d, want at least %d", got, v+2)
		}
	})
}

// TestRestoreTracksEveryInstance restores a store whose observer is a Table:
// the restore tells it of the instances from several goroutines, and every
// one of them ends up tracked with its token.
func TestRestoreTracksEveryInstance(t *testing.T) {
	src := state.New(0, nil)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var all []*state.Instance
	for s := range 40 {
		for i := range 25 {
			inst := &state.Instance{Namespace: "ns", Service: fmt.Sprintf("svc-%d", s), ID: fmt.Sprintf("i-%d", i),
				RegIndex: uint64(len(all) + 1), HeartbeatTimeout: 30, Token: fmt.Sprintf("tok-%d-%d", s, i)}
			if _, err := src.RegisterInstance(now, inst, false); err != nil {
				t.Fatal(err)
			}
			all = append(all, inst)
		}
	}
	var buf bytes.Buffer
	if _, err := src.Snapshot().WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	tb := newTable(t, lease.Options{})
	tb.InstanceAdded(instance("stale", 9999, 30)) // dropped by the restore's Reset
	if err := state.New(0, tb).Restore(&buf); err != nil {
		t.Fatal(err)
	}
	for _, inst := range all {
		if l, ok := tb.Get(inst.Key(), inst.RegIndex); !ok || l.Token != inst.Token {
			t.Fatalf("%s after restore: %+v, %v", inst.Key(), l, ok)
		}
	}
	if got := tb.Tokens(); len(got) != len(all) {
		t.Fatalf("%d tracked, want %d", len(got), len(all))
	}
}

// A registration whose command is applied after its deadline's tick was
// reaped (a commit slower than the timeout) still expires: it is filed
// under the next tick the reaper visits, not under one it has passed.
func TestRegistrationAppliedPastItsDeadlineExpires(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tb := newTable(t, lease.Options{})
		tb.SetLeader(true)
		defer tb.SetLeader(false)
		registered := time.Now()
		time.Sleep(4 * time.Second) // the commit stalls longer than the timeout
		a := instance("web-1", 1, 3)
		a.RegisteredAt = registered
		tb.InstanceAdded(a)
		b := nextBatch(t, tb, time.Second)
		if len(b) != 1 || b[0].Key != a.Key() {
			t.Fatalf("expired %+v, want %s", b, a.Key())
		}
	})
}
