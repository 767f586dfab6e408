package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/muster-registry/muster/api"
)

// Defaults of HeartbeaterOptions (and, for the backoff, of WatcherOptions
// and ResolverOptions).
const (
	DefaultDeregisterTimeout = 5 * time.Second
	DefaultMinBackoff        = 500 * time.Millisecond
	DefaultMaxBackoff        = 15 * time.Second
)

// minRetryDelay is the floor of every retry, so that halving the time left
// before a deadline never turns into a hot loop.
const minRetryDelay = 100 * time.Millisecond

// ErrStopped is returned by Start and Run when the heartbeater was stopped
// (by Stop) before its first registration succeeded, and by Start and Run
// called after Stop.
var ErrStopped = errors.New("client: heartbeater stopped")

// ErrAlreadyStarted is returned by a second call of Start or Run of a
// Heartbeater, or of Run of a Watcher or a Resolver.
var ErrAlreadyStarted = errors.New("client: already started")

// HeartbeatEventKind says what happened in a HeartbeatEvent.
type HeartbeatEventKind int

// The kinds of HeartbeatEvent, in the order a heartbeater's life goes.
const (
	// HeartbeatRegistered: the first registration succeeded, or a
	// Registration was adopted. Instance is set.
	HeartbeatRegistered HeartbeatEventKind = iota + 1
	// HeartbeatRegisterFailed: a registration attempt failed with a
	// transient error (Err); the next attempt follows after Retry.
	HeartbeatRegisterFailed
	// HeartbeatOK: a heartbeat renewed the instance until ExpiresAt.
	HeartbeatOK
	// HeartbeatFailed: a heartbeat failed with a transient error (Err); the
	// next attempt follows after Retry, before the deadline while there is
	// time left.
	HeartbeatFailed
	// HeartbeatReregistered: the instance was gone (it expired: Err matches
	// ErrNotFound) or its token was lost with an answer that never came back
	// (Err matches ErrTokenMismatch), and it was registered again under the
	// same id. Instance is the new registration.
	HeartbeatReregistered
	// HeartbeatConflict: another process holds the instance id (Err matches
	// ErrTokenMismatch). Terminal: the heartbeater stops without
	// deregistering, since the id is no longer its own.
	HeartbeatConflict
	// HeartbeatDeregistered: the instance was deregistered on shutdown; Err
	// is set when that failed (the instance then expires by itself).
	HeartbeatDeregistered
	// HeartbeatStopped: the heartbeater ended; Err is what Run returns.
	// Always the last event.
	HeartbeatStopped
)

// String names the kind, such as "heartbeat_ok".
func (k HeartbeatEventKind) String() string {
	switch k {
	case HeartbeatRegistered:
		return "registered"
	case HeartbeatRegisterFailed:
		return "register_failed"
	case HeartbeatOK:
		return "heartbeat_ok"
	case HeartbeatFailed:
		return "heartbeat_failed"
	case HeartbeatReregistered:
		return "reregistered"
	case HeartbeatConflict:
		return "conflict"
	case HeartbeatDeregistered:
		return "deregistered"
	case HeartbeatStopped:
		return "stopped"
	}
	return fmt.Sprintf("HeartbeatEventKind(%d)", int(k))
}

// HeartbeatEvent reports one thing that a Heartbeater did.
type HeartbeatEvent struct {
	Kind HeartbeatEventKind
	// Time is when it happened.
	Time time.Time
	// Instance is the instance as last registered (zero before the first
	// registration).
	Instance api.Instance
	// ExpiresAt is the server's deadline, after HeartbeatOK and registrations.
	ExpiresAt time.Time
	// Err is the failure, for the kinds that say so.
	Err error
	// Retry is the wait before the next attempt, after a transient failure.
	Retry time.Duration
}

// HeartbeaterOptions tunes a Heartbeater. The zero value is ready to use.
type HeartbeaterOptions struct {
	// OnEvent, when set, is called with every HeartbeatEvent, one at a time
	// and in order, on the heartbeater's goroutine. It must return quickly
	// (it delays the next heartbeat) and must not call Stop (Stop waits for
	// that goroutine); cancel the run context instead.
	OnEvent func(HeartbeatEvent)
	// DeregisterTimeout bounds the DELETE on shutdown (DefaultDeregisterTimeout).
	DeregisterTimeout time.Duration
	// MinBackoff and MaxBackoff bound the exponential backoff between
	// retries (DefaultMinBackoff, DefaultMaxBackoff).
	MinBackoff, MaxBackoff time.Duration
}

// Heartbeater registers an instance and keeps it alive.
//
// It heartbeats every third of the instance's heartbeat timeout, ±10%, and
// gives up on an attempt that has no answer after that third. A heartbeat
// that fails without an answer, or with 429 or 5xx, is retried after a
// capped exponential backoff with jitter, and never later than half the time
// left before the deadline, so an outage shorter than the timeout (such as a
// server restart, which keeps tokens valid and pushes deadlines) costs
// nothing. An instance that is gone (404: it expired) is registered
// again with PUT under the same id. A token_mismatch means another process
// holds the id: the heartbeater stops with that error and does not
// deregister. The one exception is a token_mismatch right after a heartbeat
// whose answer was lost: the server may have spent the token, so it is
// taken as "instance lost" and re-registered, not as a conflict.
//
// Lifecycle: call Start or Run once. Stop, or cancelling the context given
// to Start or Run, ends the heartbeats at once (a request in flight is
// cancelled) and deregisters the instance (DELETE) within
// DeregisterTimeout, on a context of its own, so a cancelled parent still
// deregisters. Stop, Instance, Done and Err may be called from any
// goroutine, at any time, any number of times. OnEvent runs on the
// heartbeater's goroutine.
type Heartbeater struct {
	c           *Client
	ns, service string
	req         api.RegisterInstanceRequest // the first registration, unless adopted
	adopted     *api.Registration
	opts        HeartbeaterOptions

	stop       chan struct{} // closed by Stop
	registered chan struct{} // closed after the first registration
	done       chan struct{} // closed when the heartbeater has ended

	mu      sync.Mutex
	started bool
	stopCtx context.Context // Stop's context, bounds the DELETE
	inst    api.Instance
	err     error
}

// NewHeartbeater returns a heartbeater that registers an instance of
// ns/service with req, with PUT: when req.ID is set, a restarted process
// takes its id back (replacing its previous, still live, registration);
// when it is empty, the heartbeater picks a random id once, so that a retry
// after an answer lost on the way registers the same instance again rather
// than a second one.
func NewHeartbeater(c *Client, ns, service string, req api.RegisterInstanceRequest, opts HeartbeaterOptions) *Heartbeater {
	return newHeartbeater(c, ns, service, req, nil, opts)
}

// AdoptHeartbeater returns a heartbeater that keeps alive an instance
// already registered as reg. It heartbeats once right away, since it cannot
// know how much of reg's timeout is left.
func AdoptHeartbeater(c *Client, ns, service string, reg api.Registration, opts HeartbeaterOptions) *Heartbeater {
	return newHeartbeater(c, ns, service, requestFrom(reg.Instance), &reg, opts)
}

func newHeartbeater(c *Client, ns, service string, req api.RegisterInstanceRequest, reg *api.Registration, opts HeartbeaterOptions) *Heartbeater {
	if opts.DeregisterTimeout <= 0 {
		opts.DeregisterTimeout = DefaultDeregisterTimeout
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = DefaultMinBackoff
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = max(DefaultMaxBackoff, opts.MinBackoff)
	}
	if req.ID == "" && reg == nil {
		req.ID = randomID()
	}
	return &Heartbeater{
		c: c, ns: ns, service: service, req: req, adopted: reg, opts: opts,
		stop:       make(chan struct{}),
		registered: make(chan struct{}),
		done:       make(chan struct{}),
	}
}

// Start registers the instance (retrying transient failures) and returns
// once that succeeded, then keeps heartbeating in a goroutine of its own
// until Stop is called or ctx is done. It returns an error when the
// registration failed for good, or when ctx ended or Stop was called
// before it succeeded.
func (h *Heartbeater) Start(ctx context.Context) error {
	if err := h.begin(); err != nil {
		return err
	}
	go h.loop(ctx)
	select {
	case <-h.registered:
		return nil
	case <-h.done:
		return h.Err()
	}
}

// Run is Start that blocks until the heartbeater ends. It returns nil when
// it was stopped (ctx done, or Stop) and deregistered cleanly; otherwise the
// terminal error: a registration refused for good, a conflict (matching
// ErrTokenMismatch), a failed deregistration, or context.Cause(ctx) (ctx's
// error unless it was cancelled with a cause) or ErrStopped when it ended
// before its first registration.
func (h *Heartbeater) Run(ctx context.Context) error {
	if err := h.begin(); err != nil {
		return err
	}
	h.loop(ctx)
	return h.Err()
}

// Stop ends the heartbeats, deregisters the instance (bounded by ctx and
// DeregisterTimeout) and waits for the heartbeater to end. It returns the
// heartbeater's final error (as Run does), or ctx's error if ctx ended
// first. Stop before Start makes Start and Run return ErrStopped.
func (h *Heartbeater) Stop(ctx context.Context) error {
	h.mu.Lock()
	select {
	case <-h.stop:
	default:
		h.stopCtx = ctx
		close(h.stop)
	}
	if !h.started {
		// Nothing runs: end it here, so Start and Run refuse to begin.
		h.started = true
		h.err = ErrStopped
		close(h.done)
		h.mu.Unlock()
		return nil
	}
	h.mu.Unlock()
	select {
	case <-h.done:
		return h.Err()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Instance answers the instance as last registered; zero before the first
// registration.
func (h *Heartbeater) Instance() api.Instance {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.inst
}

// Done is closed when the heartbeater has ended, for good.
func (h *Heartbeater) Done() <-chan struct{} { return h.done }

// Err answers the final error, what Run returns: nil while the heartbeater
// runs, final once Done is closed.
func (h *Heartbeater) Err() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.err
}

func (h *Heartbeater) begin() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.started {
		select {
		case <-h.stop:
			return ErrStopped
		default:
			return ErrAlreadyStarted
		}
	}
	h.started = true
	return nil
}

// errStopping ends the inner loops when the run context is done (by Stop,
// or by the caller).
var errStopping = errors.New("client: heartbeater stopping")

func (h *Heartbeater) loop(parent context.Context) {
	// Stop cancels the run context, cutting a request in flight short: a
	// hung server must not delay the deregistration.
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	go func() {
		select {
		case <-h.stop:
			cancel(ErrStopped)
		case <-ctx.Done():
		}
	}()
	err := h.run(ctx)
	h.mu.Lock()
	h.err = err
	h.mu.Unlock()
	h.emit(HeartbeatEvent{Kind: HeartbeatStopped, Err: err})
	close(h.done)
}

// run is the heartbeater's life; it answers the final error.
func (h *Heartbeater) run(ctx context.Context) error {
	var reg api.Registration
	var sent time.Time
	if h.adopted != nil {
		reg = *h.adopted
	} else {
		var err error
		reg, sent, err = h.register(ctx, h.req)
		if errors.Is(err, errStopping) {
			return context.Cause(ctx) // ErrStopped, or the parent's error
		}
		if err != nil {
			return err
		}
	}
	h.setInstance(reg.Instance)
	h.emit(HeartbeatEvent{Kind: HeartbeatRegistered, ExpiresAt: reg.ExpiresAt})
	close(h.registered) // after the event: Start returns after OnEvent saw it

	err := h.heartbeat(ctx, reg, sent)
	if errors.Is(err, ErrTokenMismatch) {
		return err // the id is another process's now: never delete it
	}
	if errors.Is(err, errStopping) {
		err = nil
	}
	derr := h.deregister(ctx)
	h.emit(HeartbeatEvent{Kind: HeartbeatDeregistered, Err: derr})
	return errors.Join(err, derr)
}

// heartbeat renews reg until stopped (errStopping) or a terminal error.
// sent is when reg's registration was sent; zero (an adopted registration)
// heartbeats at once.
func (h *Heartbeater) heartbeat(ctx context.Context, reg api.Registration, sent time.Time) error {
	token := reg.Token
	timeout := h.timeoutOf(reg.Instance)
	interval := timeout / 3
	deadline := sent.Add(timeout)
	wait := jitter(interval, 0.1)
	if sent.IsZero() { // adopted: how much time is left is not known
		deadline, wait = reg.ExpiresAt, 0
		if deadline.IsZero() {
			deadline = time.Now().Add(timeout)
		}
	}
	bo := backoff{initial: h.opts.MinBackoff, max: h.opts.MaxBackoff}
	// uncertain: a heartbeat since the last success got no answer, so the
	// server may have spent the token without us learning the next one.
	uncertain := false
	for {
		if !sleep(ctx, wait) {
			return errStopping
		}
		start := time.Now()
		actx, cancel := context.WithTimeout(ctx, interval)
		resp, err := h.c.Heartbeat(actx, h.ns, h.service, reg.ID, token)
		cancel()
		if ctx.Err() != nil {
			return errStopping
		}
		switch {
		case err == nil:
			token, deadline, uncertain = resp.Token, start.Add(timeout), false
			bo.reset()
			h.emit(HeartbeatEvent{Kind: HeartbeatOK, ExpiresAt: resp.ExpiresAt})
			wait = jitter(interval, 0.1)

		case errors.Is(err, ErrNotFound), errors.Is(err, ErrTokenMismatch) && uncertain:
			next, at, rerr := h.register(ctx, requestFrom(reg.Instance))
			if rerr != nil {
				return rerr
			}
			reg, token, uncertain = next, next.Token, false
			timeout = h.timeoutOf(reg.Instance)
			interval, deadline = timeout/3, at.Add(timeout)
			bo.reset()
			h.setInstance(reg.Instance)
			h.emit(HeartbeatEvent{Kind: HeartbeatReregistered, ExpiresAt: reg.ExpiresAt, Err: err})
			wait = jitter(interval, 0.1)

		case errors.Is(err, ErrTokenMismatch):
			err = fmt.Errorf("client: heartbeater: instance %s/%s/%s is held by another process: %w", h.ns, h.service, reg.ID, err)
			h.emit(HeartbeatEvent{Kind: HeartbeatConflict, Err: err})
			return err

		case isTransient(err):
			uncertain = uncertain || !isRefusal(err)
			wait = retryDelay(bo.next(), time.Until(deadline))
			h.emit(HeartbeatEvent{Kind: HeartbeatFailed, Err: err, Retry: wait})

		default:
			err = fmt.Errorf("client: heartbeater: heartbeat refused: %w", err)
			h.emit(HeartbeatEvent{Kind: HeartbeatFailed, Err: err})
			return err
		}
	}
}

// register registers req with PUT (req has an id: the caller's or one the
// heartbeater picked), retrying transient failures; PUT is idempotent, so a
// retry cannot register a second instance. It answers the registration and when the
// successful attempt was sent (the start of the instance's deadline).
func (h *Heartbeater) register(ctx context.Context, req api.RegisterInstanceRequest) (api.Registration, time.Time, error) {
	bo := backoff{initial: h.opts.MinBackoff, max: h.opts.MaxBackoff}
	for {
		start := time.Now()
		reg, err := h.c.PutInstance(ctx, h.ns, h.service, req.ID, req)
		if err == nil {
			// Even when stopping: the caller then deregisters what exists.
			return reg, start, nil
		}
		if ctx.Err() != nil {
			return reg, start, errStopping
		}
		if !isTransient(err) {
			err = fmt.Errorf("client: heartbeater: registration refused: %w", err)
			h.emit(HeartbeatEvent{Kind: HeartbeatRegisterFailed, Err: err})
			return reg, start, err
		}
		wait := bo.next()
		h.emit(HeartbeatEvent{Kind: HeartbeatRegisterFailed, Err: err, Retry: wait})
		if !sleep(ctx, wait) {
			return reg, start, errStopping
		}
	}
}

// deregister deletes the instance on a context of its own: Stop's, or the
// run context without its cancellation, bounded by DeregisterTimeout. An
// instance already gone counts as deregistered.
func (h *Heartbeater) deregister(ctx context.Context) error {
	h.mu.Lock()
	base := h.stopCtx
	id := h.inst.ID
	h.mu.Unlock()
	if base == nil {
		base = context.WithoutCancel(ctx)
	}
	dctx, cancel := context.WithTimeout(base, h.opts.DeregisterTimeout)
	defer cancel()
	err := h.c.DeregisterInstance(dctx, h.ns, h.service, id)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("client: heartbeater: deregistering %s: %w", id, err)
	}
	return nil
}

// timeoutOf is the heartbeat timeout the server holds inst to.
func (h *Heartbeater) timeoutOf(inst api.Instance) time.Duration {
	s := inst.HeartbeatTimeout
	if s <= 0 {
		s = h.req.HeartbeatTimeout
	}
	if s <= 0 {
		s = api.DefaultHeartbeatTimeout
	}
	return time.Duration(s) * time.Second
}

func (h *Heartbeater) setInstance(inst api.Instance) {
	h.mu.Lock()
	h.inst = inst
	h.mu.Unlock()
}

// emit stamps ev and hands it to OnEvent.
func (h *Heartbeater) emit(ev HeartbeatEvent) {
	if h.opts.OnEvent == nil {
		return
	}
	ev.Time = time.Now()
	ev.Instance = h.Instance()
	h.opts.OnEvent(ev)
}

// retryDelay is the wait before retrying a failed heartbeat: the backoff,
// but at most half the time left before the deadline, so that an attempt
// always comes before it; and never under minRetryDelay. Past the deadline
// the backoff alone applies (the server answers 404 once it is back, and
// the instance is registered again).
func retryDelay(backoff, left time.Duration) time.Duration {
	d := backoff
	if left > 0 {
		d = min(d, left/2)
	}
	return max(d, minRetryDelay)
}

// isRefusal reports whether err is an answer saying the request was not
// processed (rate limited, or the node cannot take it now), as opposed to a
// lost answer whose request may have been.
func isRefusal(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) &&
		(ae.StatusCode == http.StatusTooManyRequests || ae.StatusCode == http.StatusServiceUnavailable)
}

// requestFrom is the registration request that registers inst again.
func requestFrom(inst api.Instance) api.RegisterInstanceRequest {
	return api.RegisterInstanceRequest{
		ID:               inst.ID,
		RevisionTag:      inst.RevisionTag,
		Address:          inst.Address,
		Port:             inst.Port,
		PublicURL:        inst.PublicURL,
		Endpoints:        inst.Endpoints,
		Tags:             inst.Tags,
		Metadata:         inst.Metadata,
		HeartbeatTimeout: inst.HeartbeatTimeout,
	}
}

// randomID is an instance id as the server makes them: 16 hex digits of
// crypto/rand.
func randomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}
