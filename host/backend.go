package host

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/muster-registry/muster/api"
	"github.com/muster-registry/muster/client"
	"github.com/muster-registry/muster/internal/registry"
)

// Backend is a dependency of endpoints: an endpoint is enabled while every
// backend it needs is ready.
//
// The host calls Start once, when the first endpoint that needs the backend
// appears, and Stop once, after the last one went away (and its in-flight
// work drained) or when the host stops. Start must not wait for the backend
// to be ready: it returns once the backend is on its way (an error means it
// cannot start at all), and the backend reports readiness through Ready.
// Ready may be called from any goroutine at any time; it answers the
// current readiness and a channel closed at the next change.
type Backend interface {
	Start(ctx context.Context) error
	Ready() (ready bool, changed <-chan struct{})
	Stop(ctx context.Context) error
}

// ReadyState is a readiness flag with change notification, for writing a
// [Backend]: embed it and call Set. The zero value is not ready. It is safe
// for concurrent use.
type ReadyState struct {
	mu      sync.Mutex
	ready   bool
	changed chan struct{}
}

// Ready answers the flag and a channel closed at its next change.
func (s *ReadyState) Ready() (bool, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.changed == nil {
		s.changed = make(chan struct{})
	}
	return s.ready, s.changed
}

// Set sets the flag, waking the waiters when it changes.
func (s *ReadyState) Set(ready bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ready == ready {
		return
	}
	s.ready = ready
	if s.changed != nil {
		close(s.changed)
	}
	s.changed = make(chan struct{})
}

// LocalBackend is a resource the host opens itself, such as a database pool
// or a broker connection. Build it with [Local].
//
// It is ready once open succeeded, until SetReady(false) says the resource
// was lost (SetReady(true) says it is back). A failed open is retried with
// a capped exponential backoff, from 100ms to 5s, until Stop.
type LocalBackend struct {
	ReadyState
	open, close func(ctx context.Context) error

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
	opened bool
}

// Local returns a backend that calls open on Start and close (when open
// succeeded) on Stop. close may be nil. open gets a context that ends at
// Stop, and should return when it does.
func Local(open, close func(ctx context.Context) error) *LocalBackend {
	return &LocalBackend{open: open, close: close}
}

// Start opens the resource in a goroutine of its own, retrying failures.
func (b *LocalBackend) Start(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done != nil {
		return errors.New("host: local backend started twice")
	}
	// The run outlives Start's context: it ends at Stop.
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	b.cancel, b.done = cancel, make(chan struct{})
	go b.run(runCtx)
	return nil
}

func (b *LocalBackend) run(ctx context.Context) {
	defer close(b.done)
	wait := 100 * time.Millisecond
	for {
		if err := b.open(ctx); err == nil {
			b.mu.Lock()
			b.opened = true
			b.mu.Unlock()
			b.Set(true)
			return
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// SetReady reports the resource lost (false) or back (true). It has no
// effect before open succeeded.
func (b *LocalBackend) SetReady(ready bool) {
	b.mu.Lock()
	opened := b.opened
	b.mu.Unlock()
	if opened {
		b.Set(ready)
	}
}

// Stop ends the retries and closes the resource if it was opened.
func (b *LocalBackend) Stop(ctx context.Context) error {
	b.mu.Lock()
	cancel, done := b.cancel, b.done
	b.mu.Unlock()
	if done == nil {
		return nil
	}
	cancel()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	b.Set(false)
	b.mu.Lock()
	opened := b.opened
	b.opened, b.cancel, b.done = false, nil, nil // Start may run it again
	b.mu.Unlock()
	if opened && b.close != nil {
		return b.close(ctx)
	}
	return nil
}

// RemoteBackend is a service of the registry, ready while Muster shows at
// least one passing instance whose revision tag the reference's semver
// constraint accepts (any instance without a constraint). It follows the
// instances with a [client.Watcher]. Build it with [Remote].
type RemoteBackend struct {
	ReadyState
	c    *client.Client
	ref  registry.Backend
	opts client.WatcherOptions

	mu      sync.Mutex
	watcher *client.Watcher
	cancel  context.CancelFunc
	done    chan struct{}
}

// Remote returns a backend of the registry service ref, "ns/name" or
// "ns/name@constraint" (such as "acme/queue@^2"), watched through c.
func Remote(c *client.Client, ref string, opts client.WatcherOptions) (*RemoteBackend, error) {
	b, err := registry.ParseBackend(ref)
	if err != nil {
		return nil, fmt.Errorf("host: backend %w", err)
	}
	return &RemoteBackend{c: c, ref: b, opts: opts}, nil
}

// Start begins watching the service's instances.
func (b *RemoteBackend) Start(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done != nil {
		return errors.New("host: remote backend started twice")
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	b.watcher = client.NewWatcher(b.c, b.ref.Namespace, b.ref.Name, b.opts)
	b.cancel, b.done = cancel, make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = b.watcher.Run(runCtx) }()
	go func() { defer wg.Done(); b.follow(runCtx, b.watcher) }()
	go func() { wg.Wait(); close(b.done) }()
	return nil
}

func (b *RemoteBackend) follow(ctx context.Context, w *client.Watcher) {
	for {
		s := w.Snapshot()
		b.Set(slices.ContainsFunc(s.Instances, b.accepts))
		select {
		case <-s.Changed:
		case <-ctx.Done():
			return
		}
	}
}

func (b *RemoteBackend) accepts(in api.Instance) bool {
	return in.Status == api.StatusPassing && b.ref.Accepts(in.RevisionTag)
}

// Instances answers the passing instances the constraint accepts, sorted by
// id: where to send requests. Empty before Start.
func (b *RemoteBackend) Instances() []api.Instance {
	b.mu.Lock()
	w := b.watcher
	b.mu.Unlock()
	if w == nil {
		return nil
	}
	insts := w.Instances()
	return slices.DeleteFunc(insts, func(in api.Instance) bool { return !b.accepts(in) })
}

// Stop ends the watch.
func (b *RemoteBackend) Stop(ctx context.Context) error {
	b.mu.Lock()
	cancel, done := b.cancel, b.done
	b.mu.Unlock()
	if done == nil {
		return nil
	}
	cancel()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	b.Set(false)
	b.mu.Lock()
	b.watcher, b.cancel, b.done = nil, nil, nil // Start may run it again
	b.mu.Unlock()
	return nil
}
