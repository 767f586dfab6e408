// Package fanout hands the event feed to many streams at once. One goroutine
// per Hub reads each batch of new events from the store, once, and gives
// every subscription whose filter matches the events' frames (encoded and
// framed once, in the store), then wakes it. A subscriber takes everything
// pending in one call, without touching the store's lock, so a change
// followed by ten thousand streams costs the store one read, and the write
// that made the change never waits for the streams.
//
// A subscription that falls behind (more than MaxPending frames not taken,
// as a stream blocked on a slow connection would) is not waited for and
// holds nobody up: no more frames are kept for it, and Take's lost flag
// tells it to read the rest from the store's retained window, from where
// its kept frames end.
//
// Concurrency: a Hub is safe for concurrent use. A Subscription's Take and
// Close are called by its one owner; Wake may be waited on from there.
package fanout

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/muster-registry/muster/internal/state"
)

// MaxPending is how many frames a subscription may have waiting before it
// is marked lost and its frames dropped. It is a whole hub read
// (readBatch), so that a stream that keeps up takes an expiry command of
// thousands of events without being lost; the frames are shared, so each
// waiting one costs the subscription 32 bytes.
const MaxPending = readBatch

// readBatch is the most events the hub reads from the store at a time. An
// expiry wave commits thousands of events a command, back to back, and the
// hub gets the store's lock once between two commands: it must take a
// whole command's events at once, or it falls behind with every command.
const readBatch = 8192

// wave is how many subscribers the hub wakes at a time. Woken streams wait
// in the scheduler's run queues; were all of ten thousand woken at once,
// every other goroutine that becomes runnable (the next write's request,
// its commit after the fsync) would queue behind all of them. So the hub
// wakes a wave, waits until its streams have written (Done) or waveWait
// has passed, and only then wakes the next: the queues stay short, and the
// writes of one wave still run on every processor.
const wave = 128

// waveWait bounds the wait for a wave: a stream that is slow to write, or
// gone, holds up the next wave no longer than this.
const waveWait = 10 * time.Millisecond

// Frame is one event's Server-Sent Events frame and its id. Bytes is shared
// by every subscriber and must not be modified.
type Frame struct {
	ID    uint64
	Bytes []byte
}

// Hub fans the store's new events out to subscriptions. Its goroutine runs
// while it has subscriptions: the first Subscribe starts it, and the last
// Close stops it.
type Hub struct {
	store *state.Store

	mu     sync.Mutex
	groups map[groupKey]*group    // by exact filter
	where  map[state.Key][]*group // by namespace and service, "" for any
	stop   chan struct{}          // closed when the last subscription ends; nil: not running
	subs   int                    // open subscriptions
	hit    []*group               // scratch of deliver: groups with frames, reused
	// pos is the id up to which every event was handed out. Written by the
	// hub's goroutine under mu, after handing a batch to every member.
	pos atomic.Uint64
}

// groupKey identifies a filter: namespace, service and its sorted types.
type groupKey struct {
	ns, svc, types string
}

// group is the subscriptions that share one filter, so that the filter is
// matched once per event, not once per subscription.
type group struct {
	key     groupKey
	filter  state.EventFilter
	members []*Subscription
	frames  []Frame // scratch of deliver: this group's frames of the batch
}

// New returns a Hub over store.
func New(store *state.Store) *Hub {
	return &Hub{store: store, groups: make(map[groupKey]*group), where: make(map[state.Key][]*group)}
}

// Subscription is one stream's place in the hub.
type Subscription struct {
	hub  *Hub
	g    *group
	idx  int // position in g.members, under hub.mu
	wake chan struct{}
	// wave is the hub's wave this subscription's pending wake counts in;
	// Done (or Close) reports it written.
	wave atomic.Pointer[waveDone]
	// round is the hub's round that last listed it for waking (hub's
	// goroutine only).
	round uint64

	mu      sync.Mutex
	pending []Frame
	lost    bool   // frames after lostAt were not kept
	lostAt  uint64 // the hub's pos when the subscription was lost
}

// Subscribe registers a subscription for the events that f selects. Events
// appended after the call are handed to it; read what came before from the
// store after subscribing, so that nothing falls between the two (Take's
// frames may then repeat events already read: skip ids already sent).
// Close it when done.
func (h *Hub) Subscribe(f state.EventFilter) *Subscription {
	types := slices.Clone(f.Types)
	slices.Sort(types)
	types = slices.Compact(types)
	key := groupKey{f.Namespace, f.Service, strings.Join(types, ",")}
	s := &Subscription{hub: h, wake: make(chan struct{}, 1)}
	h.mu.Lock()
	defer h.mu.Unlock()
	g := h.groups[key]
	if g == nil {
		g = &group{key: key, filter: state.EventFilter{Namespace: f.Namespace, Service: f.Service, Types: types}}
		h.groups[key] = g
		wk := state.Key{Namespace: f.Namespace, Name: f.Service}
		h.where[wk] = append(h.where[wk], g)
	}
	s.g, s.idx = g, len(g.members)
	g.members = append(g.members, s)
	h.subs++
	if h.stop == nil {
		h.stop = make(chan struct{})
		// Start where the store is now: a subscriber reads the store after
		// subscribing, so it has everything up to here.
		from := h.store.Index()
		h.pos.Store(from)
		go h.run(h.stop, from)
	}
	return s
}

// Wake is signalled when frames are pending or the subscription is lost.
func (s *Subscription) Wake() <-chan struct{} { return s.wake }

// Take hands over the pending frames, oldest first, appended to buf[:0]
// (pass the previous answer back to reuse it), and upTo: the id up to which
// every matching event is in this or an earlier answer, so that a reader of
// the store may continue after it. When lost is true, frames stopped at
// upTo because the subscription fell behind (or the feed jumped): write
// them, then read the store after upTo.
func (s *Subscription) Take(buf []Frame) (frames []Frame, upTo uint64, lost bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	frames, s.pending = s.pending, buf[:0]
	if s.lost {
		s.lost = false
		return frames, s.lostAt, true
	}
	// The hub moves pos after handing a batch to every member, and handing
	// it to this one needs s.mu: a pos read here covers only batches
	// already in frames.
	return frames, s.hub.pos.Load(), false
}

// Done tells the hub that the frames taken since the last wake are
// written: the hub waits for a wave's subscriptions before it wakes the
// next. Call it after writing what Take answered.
func (s *Subscription) Done() {
	if w := s.wave.Swap(nil); w != nil && w.n.Add(-1) == 0 {
		close(w.ch)
	}
}

// Close ends the subscription; the last one stops the hub's goroutine.
func (s *Subscription) Close() {
	s.Done() // a wake it will not answer must not hold up a wave
	h := s.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	g := s.g
	if g == nil {
		return
	}
	last := len(g.members) - 1
	g.members[s.idx] = g.members[last]
	g.members[s.idx].idx = s.idx
	g.members[last] = nil
	g.members = g.members[:last]
	s.g = nil
	if len(g.members) == 0 {
		delete(h.groups, g.key)
		wk := state.Key{Namespace: g.key.ns, Name: g.key.svc}
		gs := slices.DeleteFunc(h.where[wk], func(x *group) bool { return x == g })
		if len(gs) == 0 {
			delete(h.where, wk)
		} else {
			h.where[wk] = gs
		}
	}
	h.subs--
	if h.subs == 0 {
		close(h.stop)
		h.stop = nil
	}
}

// run reads the store after pos and hands out what it finds until stop.
//
// Waking ten thousand streams takes longer than the gap between two writes
// under load, so a round of waking does not run to its end when new events
// arrive: the hub hands those out too, then wakes first the streams the
// last round had not reached (each takes both batches in one write), then
// the others.
func (h *Hub) run(stop chan struct{}, pos uint64) {
	var (
		evs   []state.EncodedEvent
		woken []*Subscription // to wake, in order: the last round's rest first
		got   []*Subscription // scratch: the subscriptions the batch has frames for
		round uint64
	)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		watch := h.store.Watch()
		var (
			newest uint64
			err    error
		)
		evs, newest, err = h.store.AppendEncodedEvents(evs[:0], pos, state.EventFilter{}, readBatch)
		h.mu.Lock()
		select {
		case <-stop:
			h.mu.Unlock()
			return
		default:
		}
		if err != nil || newest < pos {
			// The feed jumped (a snapshot was restored) past what the hub
			// held: every subscriber reads the store, which knows what to answer.
			got = h.loseAll(got[:0])
			pos = newest
		} else {
			got = h.deliver(evs, got[:0])
			pos = state.ScanToEncoded(evs, readBatch, pos, newest)
		}
		h.pos.Store(pos)
		h.mu.Unlock()
		clear(evs) // let dropped frames go
		round++
		for _, s := range woken {
			s.round = round
		}
		for _, s := range got {
			if s.round != round {
				s.round = round
				woken = append(woken, s)
			}
		}
		clear(got)
		rest := signal(woken, stop, timer, watch)
		n := copy(woken, rest)
		clear(woken[n:])
		woken = woken[:n]
		if n > 0 || len(evs) >= readBatch {
			continue // new events came while waking, or more are waiting
		}
		select {
		case <-watch:
		case <-stop:
			return
		}
	}
}

// waveDone counts the subscriptions of a wave that have not written yet;
// ch is closed when the count reaches zero.
type waveDone struct {
	n  atomic.Int32
	ch chan struct{}
}

// signal wakes the subscriptions, a wave at a time, each wave after the
// previous one has written (or waveWait has passed). When more is closed
// (new events to hand out) between two waves, it stops and returns the
// subscriptions it has not woken. A subscription closed since is woken for
// nothing, which is harmless. It returns early when stop is closed.
func signal(subs []*Subscription, stop <-chan struct{}, timer *time.Timer, more <-chan struct{}) (rest []*Subscription) {
	for len(subs) > 0 {
		n := min(len(subs), wave)
		w := &waveDone{ch: make(chan struct{})}
		w.n.Add(1) // the hub's own count, so that ch cannot close while waking
		for _, s := range subs[:n] {
			s.signal(w)
		}
		subs = subs[n:]
		if len(subs) == 0 {
			return nil
		}
		if w.n.Add(-1) != 0 {
			timer.Reset(waveWait)
			select {
			case <-w.ch:
				timer.Stop() // no stale tick can follow (Go 1.23 timers)
			case <-timer.C:
			case <-stop:
				return nil
			}
		}
		select {
		case <-more:
			return subs
		default:
		}
	}
	return nil
}

// deliver gives each group the frames of the events it selects, then each
// member its group's frames, and answers woken with the members that got
// some (or were lost) appended. Called with h.mu held.
func (h *Hub) deliver(evs []state.EncodedEvent, woken []*Subscription) []*Subscription {
	hit := h.hit[:0]
	for i := range evs {
		e := &evs[i]
		h.eachGroup(e.Namespace, e.Service, func(g *group) {
			if !g.filter.Match(e.Type, e.Namespace, e.Service) {
				return
			}
			if len(g.frames) == 0 {
				hit = append(hit, g)
			}
			g.frames = append(g.frames, Frame{ID: e.ID, Bytes: e.Frame})
		})
	}
	for _, g := range hit {
		for _, s := range g.members {
			s.add(g.frames)
		}
		woken = append(woken, g.members...)
		clear(g.frames) // let the bytes go with the ring
		g.frames = g.frames[:0]
	}
	clear(hit)
	h.hit = hit[:0]
	return woken
}

// eachGroup calls fn with every group whose namespace and service admit an
// event of ns/svc: exact, any service, any namespace, and any at all.
func (h *Hub) eachGroup(ns, svc string, fn func(*group)) {
	keys := [4]state.Key{{Namespace: ns, Name: svc}, {Namespace: ns}, {Name: svc}, {}}
	for i, k := range keys {
		if slices.Contains(keys[:i], k) {
			continue // ns or svc is empty: the same key twice
		}
		for _, g := range h.where[k] {
			fn(g)
		}
	}
}

// add appends a batch's frames to the pending ones; the hub wakes the
// subscriber after. A batch that would take it past MaxPending is not kept:
// the subscription is lost as of the end of the previous batch. Called by
// the hub's goroutine with h.mu held, before pos moves past the batch.
func (s *Subscription) add(fs []Frame) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.lost:
		// It will read the store from lostAt; nothing more is kept.
	case len(s.pending)+len(fs) > MaxPending:
		s.lose()
	default:
		s.pending = append(s.pending, fs...)
	}
}

// lose marks the subscription lost as of the hub's pos. Called with s.mu
// held, by the hub's goroutine.
func (s *Subscription) lose() {
	if !s.lost {
		s.lost, s.lostAt = true, s.hub.pos.Load()
	}
}

// signal wakes the subscription. When no earlier wave waits for it, wave w
// counts it until Done.
func (s *Subscription) signal(w *waveDone) {
	w.n.Add(1)
	if !s.wave.CompareAndSwap(nil, w) {
		w.n.Add(-1) // it will answer an earlier wave
	}
	select {
	case s.wake <- struct{}{}:
	default: // a wake is already pending
	}
}

// loseAll marks every subscription lost as of pos and answers woken with
// them appended. Called with h.mu held.
func (h *Hub) loseAll(woken []*Subscription) []*Subscription {
	for _, g := range h.groups {
		for _, s := range g.members {
			s.mu.Lock()
			s.lose()
			s.mu.Unlock()
		}
		woken = append(woken, g.members...)
	}
	return woken
}
