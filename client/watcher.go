package client

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/muster-registry/muster/api"
)

// DefaultWatchWait is how long one long poll of a Watcher or a Resolver waits
// for an event.
const DefaultWatchWait = 60 * time.Second

// watchedTypes are the events that change a service's set of instances.
func watchedTypes() []string {
	return []string{api.EventInstanceJoin, api.EventInstanceUpdate, api.EventInstanceRemove, api.EventInstanceTimeout}
}

// WatcherOptions tunes a Watcher. The zero value is ready to use.
type WatcherOptions struct {
	// Wait is how long one long poll waits for an event (DefaultWatchWait,
	// at most api.MaxWaitSeconds).
	Wait time.Duration
	// PageSize is the page size of the lists (the server's default when 0).
	PageSize int
	// MinBackoff and MaxBackoff bound the exponential backoff after a
	// failure (DefaultMinBackoff, DefaultMaxBackoff).
	MinBackoff, MaxBackoff time.Duration
	// OnError, when set, is called with each failure on the watcher's
	// goroutine; the watcher retries by itself. It must return quickly.
	OnError func(error)
}

// WatchSnapshot is the state of a Watcher's cache at one moment.
type WatchSnapshot struct {
	// Instances are the passing instances, sorted by id. The slice is the
	// caller's; the maps and slices inside the instances are shared with
	// the watcher and must not be changed.
	Instances []api.Instance
	// Index is the id of the newest event the cache reflects.
	Index Index
	// Changed is closed at the first change of Instances after this
	// snapshot. Events that change nothing do not close it.
	Changed <-chan struct{}
}

// Watcher keeps a local copy of one service's passing instances.
//
// Run lists the instances (status=passing, every page), then follows the
// events feed from the list's index with long polls (GET /v1/events with
// after= and wait=): instance.join and instance.update put the instance in
// the cache (or take it out when it is no longer passing), instance.remove
// and instance.timeout take it out. After a transport or server error it
// waits a capped exponential backoff and resumes from the last event it
// applied, so it misses nothing; when the events it needs were compacted
// away (410) it lists again. A service that does not exist yet (the list
// answers 404) is watched as one without instances. Long polls were chosen over
// Server-Sent Events because each poll is an ordinary request: a proxy that
// buffers or cuts streams cannot stall it, and resuming is the same code as
// polling.
//
// Reads never make a round trip. Instances, Snapshot and Ready may be called
// from any goroutine, before, during and after Run. To follow changes:
//
//	for {
//		s := w.Snapshot()
//		use(s.Instances)
//		select {
//		case <-s.Changed:
//		case <-ctx.Done():
//			return
//		}
//	}
//
// Changes that come while the caller is busy are coalesced: the next
// Snapshot has all of them.
type Watcher struct {
	c           *Client
	ns, service string
	opts        WatcherOptions
	ready       chan struct{} // closed after the first list

	mu        sync.Mutex
	started   bool
	instances map[string]api.Instance
	sorted    []api.Instance // instances sorted by id; replaced, never changed
	index     Index
	changed   chan struct{} // closed on the next change
}

// NewWatcher returns a watcher of the passing instances of ns/service. It
// does nothing until Run.
func NewWatcher(c *Client, ns, service string, opts WatcherOptions) *Watcher {
	opts.Wait, opts.MinBackoff, opts.MaxBackoff = followDefaults(opts.Wait, opts.MinBackoff, opts.MaxBackoff)
	return &Watcher{
		c: c, ns: ns, service: service, opts: opts,
		ready:     make(chan struct{}),
		instances: map[string]api.Instance{},
		changed:   make(chan struct{}),
	}
}

// Instances answers the passing instances, sorted by id; empty before the
// first list (see Ready). The slice is the caller's; the maps and slices
// inside the instances are shared and must not be changed.
func (w *Watcher) Instances() []api.Instance {
	return w.Snapshot().Instances
}

// Snapshot answers the cache, its index and a channel closed at its next
// change, all taken at one moment.
func (w *Watcher) Snapshot() WatchSnapshot {
	w.mu.Lock()
	defer w.mu.Unlock()
	return WatchSnapshot{Instances: slices.Clone(w.sorted), Index: w.index, Changed: w.changed}
}

// Ready is closed once the first list has filled the cache.
func (w *Watcher) Ready() <-chan struct{} { return w.ready }

// Run keeps the cache current until ctx is done, and then returns ctx's
// error. It returns ErrAlreadyStarted when called a second time.
func (w *Watcher) Run(ctx context.Context) error {
	w.mu.Lock()
	if w.started {
		w.mu.Unlock()
		return ErrAlreadyStarted
	}
	w.started = true
	w.mu.Unlock()

	f := follower{
		c: w.c,
		query: EventQuery{
			Namespace: w.ns, Service: w.service, Types: watchedTypes(), Wait: w.opts.Wait,
		},
		bo:     backoff{initial: w.opts.MinBackoff, max: w.opts.MaxBackoff},
		report: w.report,
		sync: func(ctx context.Context) (Index, error) {
			insts, idx, err := w.list(ctx)
			if err != nil {
				return 0, err
			}
			w.replace(insts, idx)
			return idx, nil
		},
		apply: func(_ context.Context, list api.EventList, after uint64) (uint64, error) {
			return w.apply(list, after), nil
		},
	}
	return f.run(ctx)
}

func (w *Watcher) report(err error) {
	if w.opts.OnError != nil {
		w.opts.OnError(err)
	}
}

// list reads every page of the passing instances. Its index is the lowest
// of the pages' indexes, so following the feed from it replays anything that
// changed between pages (replaying is harmless: events carry whole
// instances). A service that does not exist yet answers 404: it has no
// instances then, and following from the index of a status read taken
// before a second, confirming, list misses nothing.
func (w *Watcher) list(ctx context.Context) ([]api.Instance, Index, error) {
	insts, idx, err := w.listPages(ctx)
	if !errors.Is(err, ErrNotFound) {
		return insts, idx, err
	}
	st, err := w.c.Status(ctx)
	if err != nil {
		return nil, 0, err
	}
	insts, idx, err = w.listPages(ctx)
	if errors.Is(err, ErrNotFound) {
		return nil, Index(st.EventIndex), nil
	}
	return insts, idx, err
}

func (w *Watcher) listPages(ctx context.Context) ([]api.Instance, Index, error) {
	var all []api.Instance
	var low Index
	opts := InstanceListOptions{Status: api.StatusPassing, Limit: w.opts.PageSize}
	for page := 0; ; page++ {
		l, idx, err := w.c.ListInstances(ctx, w.ns, w.service, opts)
		if err != nil {
			return nil, 0, err
		}
		if page == 0 || idx < low {
			low = idx
		}
		all = append(all, l.Values...)
		next := l.Metadata.NextMarker
		if next == nil || *next == "" {
			return all, low, nil
		}
		if *next == opts.Marker {
			return nil, 0, fmt.Errorf("client: watcher: list of %s/%s repeats marker %q", w.ns, w.service, *next)
		}
		opts.Marker = *next
	}
}

// replace makes insts the cache, as of idx.
func (w *Watcher) replace(insts []api.Instance, idx Index) {
	m := make(map[string]api.Instance, len(insts))
	for _, in := range insts {
		if passing(in) {
			m[in.ID] = in
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.index = idx
	first := !isClosed(w.ready)
	// The first list always publishes, waking whoever took a snapshot
	// before it.
	if first || !maps.EqualFunc(w.instances, m, equalInstance) {
		w.instances = m
		w.publish()
	}
	if first {
		close(w.ready)
	}
}

// apply applies an answer of the feed and answers the id to follow from.
func (w *Watcher) apply(list api.EventList, after uint64) uint64 {
	next := max(after, list.Next)
	var errs []error
	w.mu.Lock()
	changed := false
	for _, ev := range list.Events {
		next = max(next, ev.ID)
		if ev.Namespace != w.ns || ev.Service != w.service {
			continue // the server filters; this guards against one that does not
		}
		c, err := w.applyEvent(ev)
		if err != nil {
			errs = append(errs, err)
		}
		changed = changed || c
	}
	w.index = Index(next)
	if changed {
		w.publish()
	}
	w.mu.Unlock()
	for _, err := range errs {
		w.report(err)
	}
	return next
}

// applyEvent applies one event to the cache and reports whether it changed
// it. Called with mu held.
func (w *Watcher) applyEvent(ev api.Event) (bool, error) {
	switch ev.Type {
	case api.EventInstanceJoin, api.EventInstanceUpdate:
		var in api.Instance
		if err := json.Unmarshal(ev.Payload, &in); err != nil || in.ID == "" {
			return false, fmt.Errorf("client: watcher: event %d (%s): bad payload: %v", ev.ID, ev.Type, err)
		}
		old, ok := w.instances[in.ID]
		if !passing(in) {
			delete(w.instances, in.ID)
			return ok, nil
		}
		w.instances[in.ID] = in
		return !ok || !equalInstance(old, in), nil
	case api.EventInstanceRemove, api.EventInstanceTimeout:
		var p api.InstanceRemovedPayload
		if err := json.Unmarshal(ev.Payload, &p); err != nil || p.ID == "" {
			return false, fmt.Errorf("client: watcher: event %d (%s): bad payload: %v", ev.ID, ev.Type, err)
		}
		_, ok := w.instances[p.ID]
		delete(w.instances, p.ID)
		return ok, nil
	}
	return false, nil
}

// publish rebuilds the sorted view and wakes the subscribers. Called with mu
// held.
func (w *Watcher) publish() {
	w.sorted = slices.SortedFunc(maps.Values(w.instances), func(a, b api.Instance) int {
		return cmp.Compare(a.ID, b.ID)
	})
	close(w.changed)
	w.changed = make(chan struct{})
}

// passing reports whether in belongs in the cache: passing, or without a
// status (taken as passing); never critical or a status this SDK does not
// know.
func passing(in api.Instance) bool {
	return in.Status == api.StatusPassing || in.Status == ""
}

func equalInstance(a, b api.Instance) bool { return reflect.DeepEqual(a, b) }

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
