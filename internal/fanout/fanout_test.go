package fanout_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/muster-registry/muster/api"
	"github.com/muster-registry/muster/internal/fanout"
	"github.com/muster-registry/muster/internal/state"
)

var t0 = time.Date(2026, 11, 23, 1, 2, 3, 0, time.UTC)

// join appends one instance.join event of ns/svc.
func join(t testing.TB, st *state.Store, ns, svc string, n int) {
	t.Helper()
	inst := &state.Instance{Namespace: ns, Service: svc, ID: fmt.Sprintf("i-%d", n), HeartbeatTimeout: 30, RegIndex: uint64(n), Token: "t"}
	if _, err := st.RegisterInstance(t0, inst, false); err != nil {
		t.Fatal(err)
	}
}

// follower takes from a subscription the way a stream does: it keeps the
// frames after `after`, and on a lost subscription reads the store again.
type follower struct {
	st     *state.Store
	sub    *fanout.Subscription
	filter state.EventFilter
	after  uint64
	got    []uint64 // ids, in the order received
	frames [][]byte
	lost   int
	buf    []fanout.Frame
}

func follow(st *state.Store, hub *fanout.Hub, f state.EventFilter) *follower {
	fl := &follower{st: st, sub: hub.Subscribe(f), filter: f}
	fl.readStore()
	return fl
}

func (fl *follower) readStore() {
	evs, newest, err := fl.st.EncodedEvents(fl.after, fl.filter, 1<<20)
	if err != nil {
		panic(err)
	}
	for _, e := range evs {
		fl.got = append(fl.got, e.ID)
		fl.frames = append(fl.frames, e.Frame)
	}
	fl.after = state.ScanToEncoded(evs, 1<<20, fl.after, newest)
}

// take takes once, as a stream does on a wake.
func (fl *follower) take() {
	frames, upTo, lost := fl.sub.Take(fl.buf)
	fl.buf = frames
	for _, f := range frames {
		if f.ID <= fl.after {
			continue
		}
		fl.got = append(fl.got, f.ID)
		fl.frames = append(fl.frames, f.Bytes)
		fl.after = f.ID
	}
	fl.after = max(fl.after, upTo)
	if lost {
		fl.lost++
		fl.readStore()
	}
}

// catchUp takes on every wake until the follower has as many events as
// the store holds for its filter, or fails the test when ctx ends first. A
// subscription is woken only for events its filter selects.
func (fl *follower) catchUp(ctx context.Context, t *testing.T) {
	t.Helper()
	want, _, err := fl.st.EncodedEvents(0, fl.filter, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	for len(fl.got) < len(want) {
		select {
		case <-fl.sub.Wake():
			fl.take()
		case <-ctx.Done():
			t.Fatalf("follower of %+v got %d events, want %d", fl.filter, len(fl.got), len(want))
		}
	}
}

func wantIDs(t *testing.T, st *state.Store, fl *follower) {
	t.Helper()
	want, _, err := st.EncodedEvents(0, fl.filter, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if len(fl.got) != len(want) {
		t.Fatalf("filter %+v: got %d events %v, want %d", fl.filter, len(fl.got), fl.got, len(want))
	}
	for i, e := range want {
		if fl.got[i] != e.ID || !bytes.Equal(fl.frames[i], e.Frame) {
			t.Fatalf("filter %+v: event %d is %d %q, want %d %q", fl.filter, i, fl.got[i], fl.frames[i], e.ID, e.Frame)
		}
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// Every subscription gets exactly the events its filter selects, in order,
// whether its filter is exact, partly wildcard or empty, and whether it
// subscribed before the first event or in the middle of the feed.
func TestSubscriptionsGetWhatTheirFilterSelects(t *testing.T) {
	filters := []state.EventFilter{
		{},
		{Namespace: "ns1"},
		{Service: "a"},
		{Namespace: "ns1", Service: "a"},
		{Namespace: "ns2", Service: "a", Types: []string{api.EventInstanceJoin}},
		{Types: []string{api.EventRevisionDefault, api.EventInstanceJoin}},
		{Types: []string{api.EventInstanceJoin, api.EventRevisionDefault, api.EventInstanceJoin}},
		{Namespace: "ns3"},
	}
	ctx := testCtx(t)
	st := state.New(0, nil)
	hub := fanout.New(st)
	var fls []*follower
	for i := range 60 {
		if i == 0 || i == 30 {
			for _, f := range filters {
				fls = append(fls, follow(st, hub, f))
			}
		}
		ns, svc := []string{"ns1", "ns2"}[i%2], []string{"a", "b", "c"}[i%3]
		if i%5 == 0 {
			if _, _, err := st.RegisterRevision(t0, state.Key{Namespace: ns, Name: svc}, fmt.Sprintf("1.0.%d", i), nil, nil); err != nil {
				t.Fatal(err)
			}
			continue
		}
		join(t, st, ns, svc, i)
	}
	for _, fl := range fls {
		fl.catchUp(ctx, t)
	}
	for _, fl := range fls[:len(filters)] {
		wantIDs(t, st, fl)
		if fl.lost != 0 {
			t.Fatalf("filter %+v was lost %d times", fl.filter, fl.lost)
		}
		fl.sub.Close()
	}
	for _, fl := range fls[len(filters):] {
		fl.sub.Close()
	}
}

// Many subscriptions of one filter all get every event in order.
func TestManySubscribersGetEveryEventInOrder(t *testing.T) {
	ctx := testCtx(t)
	st := state.New(0, nil)
	hub := fanout.New(st)
	f := state.EventFilter{Namespace: "ns", Service: "watched"}
	fls := make([]*follower, 300)
	for i := range fls {
		fls[i] = follow(st, hub, f)
	}
	// Nobody takes while the writes happen: the writer does not wait for them.
	for n := range 500 {
		join(t, st, "ns", []string{"watched", "other"}[n%2], n)
	}
	for _, fl := range fls {
		fl.catchUp(ctx, t)
		wantIDs(t, st, fl)
		fl.sub.Close()
	}
}

// A subscription that never takes does not hold up the writer or the
// others: past MaxPending its frames are dropped, and it is told to read
// the store, where it finds every event in order.
func TestSlowSubscriberIsLostNotWaitedFor(t *testing.T) {
	ctx := testCtx(t)
	st := state.New(0, nil)
	hub := fanout.New(st)
	f := state.EventFilter{Namespace: "ns"}
	slow := follow(st, hub, f)
	fast := follow(st, hub, f)
	n := 3 * fanout.MaxPending
	for i := range n {
		join(t, st, "ns", "svc", i)
		if i%100 == 0 {
			fast.catchUp(ctx, t)
		}
	}
	fast.catchUp(ctx, t)
	wantIDs(t, st, fast)
	if fast.lost != 0 {
		t.Fatalf("the subscriber that kept up was lost %d times", fast.lost)
	}
	slow.catchUp(ctx, t)
	if slow.lost == 0 {
		t.Fatal("the slow subscriber was never told it was lost")
	}
	wantIDs(t, st, slow)
	slow.sub.Close()
	fast.sub.Close()
}

// A subscription that keeps up takes a whole expiry command, thousands of
// events in one commit, without being lost: the hub reads up to readBatch
// at once, and a subscription may hold that many.
func TestCaughtUpSubscriberTakesAWholeExpiryBatch(t *testing.T) {
	ctx := testCtx(t)
	st := state.New(0, nil)
	hub := fanout.New(st)
	fl := follow(st, hub, state.EventFilter{Namespace: "ns"})
	const n = 5000
	items := make([]state.Expiry, n)
	for i := range n {
		join(t, st, "ns", "svc", i)
		items[i] = state.Expiry{Key: state.InstanceKey{Namespace: "ns", Service: "svc", ID: fmt.Sprintf("i-%d", i)}, RegIndex: uint64(i), Deadline: t0}
		if i%500 == 0 {
			fl.catchUp(ctx, t)
		}
	}
	fl.catchUp(ctx, t)
	if got := st.ExpireInstances(t0, items); got != n {
		t.Fatalf("expired %d, want %d", got, n)
	}
	fl.catchUp(ctx, t)
	wantIDs(t, st, fl)
	if fl.lost != 0 {
		t.Fatalf("lost %d times over one command of %d events", fl.lost, n)
	}
	fl.sub.Close()
}

// After the last subscription closes, the hub stops; a new subscription
// starts it again, from where the feed is then.
func TestHubRestartsAfterTheLastSubscriptionCloses(t *testing.T) {
	ctx := testCtx(t)
	st := state.New(0, nil)
	hub := fanout.New(st)
	f := state.EventFilter{}
	for round := range 3 {
		fl := follow(st, hub, f)
		for i := range 10 {
			join(t, st, "ns", "svc", round*10+i)
		}
		fl.catchUp(ctx, t)
		wantIDs(t, st, fl)
		fl.sub.Close()
		fl.sub.Close()                      // twice is harmless
		join(t, st, "ns", "gap", 100+round) // with no subscriber
	}
}

// A restore that moves the feed under the hub makes every subscription
// read the store.
func TestRestoreLosesEverySubscription(t *testing.T) {
	ctx := testCtx(t)
	src := state.New(0, nil)
	for i := range 50 {
		join(t, src, "ns", "svc", i)
	}
	var snap bytes.Buffer
	if _, err := src.Snapshot().WriteTo(&snap); err != nil {
		t.Fatal(err)
	}
	st := state.New(10, nil) // holds fewer than the snapshot brings
	hub := fanout.New(st)
	join(t, st, "ns", "svc", 0)
	fl := follow(st, hub, state.EventFilter{})
	if err := st.Restore(&snap); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case <-fl.sub.Wake():
		case <-ctx.Done():
			t.Fatal("the subscription was not woken by the restore")
		}
		frames, upTo, lost := fl.sub.Take(nil)
		if len(frames) > 0 {
			t.Fatalf("frames %v across a restore that skipped the window", frames)
		}
		if lost {
			if upTo != 1 {
				t.Fatalf("lost as of %d, want 1 (where the hub was)", upTo)
			}
			break
		}
	}
	if _, _, err := st.EncodedEvents(1, state.EventFilter{}, 10); err == nil {
		t.Fatal("reading on from where the subscription was lost does not fail as compacted")
	}
	fl.sub.Close()
}

// pending counts the subscriptions with a wake pending, without taking it.
func pending(subs []*fanout.Subscription) int {
	n := 0
	for _, s := range subs {
		n += len(s.Wake())
	}
	return n
}

// answer takes every pending wake as a stream does: Take, write, Done.
func answer(subs []*fanout.Subscription) {
	for _, s := range subs {
		select {
		case <-s.Wake():
			s.Take(nil)
			s.Done()
		default:
		}
	}
}

// The hub wakes a wave of 128 subscriptions and wakes the next only once
// the first has written (Done), so that ten thousand woken streams do not
// crowd the scheduler's queues; a wave that never answers holds up the next
// for waveWait (10 ms) only.
func TestWavesWaitForTheWritesOfThePrevious(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := state.New(0, nil)
		hub := fanout.New(st)
		subs := make([]*fanout.Subscription, 300) // waves of 128, 128 and 44
		for i := range subs {
			subs[i] = hub.Subscribe(state.EventFilter{})
		}
		defer func() {
			for _, s := range subs {
				s.Close()
			}
		}()
		join(t, st, "ns", "svc", 1)
		synctest.Wait()
		if got := pending(subs); got != 128 {
			t.Fatalf("first wave: %d woken, want 128", got)
		}
		// Answered: the next wave follows at once, with no time passing.
		start := time.Now()
		answer(subs)
		synctest.Wait()
		if got := pending(subs); got != 128 || time.Since(start) != 0 {
			t.Fatalf("after the first wave answered: %d woken after %v, want 128 at once", got, time.Since(start))
		}
		// Not answered: the last wave waits for the bound, not longer.
		time.Sleep(9 * time.Millisecond)
		synctest.Wait()
		if got := pending(subs); got != 128 {
			t.Fatalf("9 ms into an unanswered wave: %d woken, want still 128", got)
		}
		time.Sleep(2 * time.Millisecond)
		synctest.Wait()
		if got := pending(subs); got != 300-128 {
			t.Fatalf("past the bound: %d woken, want %d", got, 300-128)
		}
	})
}

// New events that arrive while a round of waking is under way are handed
// out at once; the streams the round had not reached are woken next, and
// each takes both events in one go.
func TestLateStreamsTakeNewEventsTogether(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := state.New(0, nil)
		hub := fanout.New(st)
		subs := make([]*fanout.Subscription, 300)
		for i := range subs {
			subs[i] = hub.Subscribe(state.EventFilter{})
		}
		defer func() {
			for _, s := range subs {
				s.Close()
			}
		}()
		join(t, st, "ns", "svc", 1)
		synctest.Wait()
		first := map[*fanout.Subscription]bool{}
		for _, s := range subs {
			if len(s.Wake()) == 1 {
				first[s] = true
			}
		}
		if len(first) != 128 {
			t.Fatalf("first wave: %d woken, want 128", len(first))
		}
		join(t, st, "ns", "svc", 2) // arrives while the first wave writes
		answer(subs)
		synctest.Wait()
		woken := 0
		for _, s := range subs {
			if len(s.Wake()) == 0 {
				continue
			}
			woken++
			if first[s] {
				t.Fatal("a stream of the first wave was woken before the streams the round had not reached")
			}
			<-s.Wake()
			if frames, _, _ := s.Take(nil); len(frames) != 2 {
				t.Fatalf("a late stream took %d frames, want both events", len(frames))
			}
			s.Done()
		}
		if woken != 128 {
			t.Fatalf("second wave: %d woken, want 128", woken)
		}
	})
}
