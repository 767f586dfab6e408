package client

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/muster-registry/muster/api"
)

// ErrNotResolved is returned by Resolve and ResolveFor of a [Resolver]
// before its first resolution (see Resolver.Ready).
var ErrNotResolved = errors.New("client: not resolved yet")

// serviceChangeTypes are the events of a service that can change its
// resolutions: its revisions and default, its instances (the passing ones
// are the answer, and fallback_to_default depends on them) and its policy.
func serviceChangeTypes() []string {
	return []string{
		api.EventRevisionRegister, api.EventRevisionDefault, api.EventRevisionRemove,
		api.EventInstanceJoin, api.EventInstanceUpdate, api.EventInstanceRemove, api.EventInstanceTimeout,
		api.EventServiceUpdate,
	}
}

// urlMapChangeTypes are the events of the namespace's other services that
// can change its URL map: instances coming and going or changing their
// endpoints, endpoints switched, and defaults moving (a default revision's
// instance wins a contested resource).
func urlMapChangeTypes() []string {
	return []string{
		api.EventRevisionDefault, api.EventRevisionRemove,
		api.EventInstanceJoin, api.EventInstanceUpdate, api.EventInstanceRemove, api.EventInstanceTimeout,
		api.EventEndpointEnabled, api.EventEndpointDisabled,
	}
}

// ResolverOptions tunes a Resolver. The zero value is ready to use.
type ResolverOptions struct {
	// Wait is how long one long poll waits for an event (DefaultWatchWait,
	// at most api.MaxWaitSeconds).
	Wait time.Duration
	// MinBackoff and MaxBackoff bound the exponential backoff after a
	// failure (DefaultMinBackoff, DefaultMaxBackoff).
	MinBackoff, MaxBackoff time.Duration
	// OnError, when set, is called with each failure on the resolver's
	// goroutine; the resolver retries by itself. It must return quickly.
	OnError func(error)
	// FollowNamespace also resolves again when another service of the
	// namespace changes in a way that can change the URL map
	// (api.Resolution.URLMap): it follows the whole namespace's feed.
	// Without it the URL map is as of the last resolution that a change of
	// the service itself caused.
	FollowNamespace bool
}

// Resolved is the resolution of one request of a Resolver.
type Resolved struct {
	// Request is the request as given to NewResolver.
	Request ResolveOptions
	// Resolution is the server's answer; zero when Err is set.
	Resolution api.Resolution
	// Err is the server's definite refusal, such as an *APIError matching
	// ErrNotFound while the service has no revision. Failures that may
	// pass (no answer, 5xx, 429) never land here: the resolver keeps the
	// previous answer and retries.
	Err error
}

// ResolverSnapshot is the state of a Resolver's cache at one moment.
type ResolverSnapshot struct {
	// Results are the resolutions in the order of NewResolver's requests;
	// nil before the first resolution. The slice is the caller's; the
	// slices and maps inside are shared with the resolver and must not be
	// changed.
	Results []Resolved
	// Index is the id of the newest event the cache reflects.
	Index Index
	// Changed is closed at the first change of Results after this
	// snapshot. Re-resolutions that find the same answers do not close it;
	// neither do changes of the instances' LastHeartbeatAt and ExpiresAt
	// alone.
	Changed <-chan struct{}
}

// Resolver keeps the resolutions of one service for a fixed set of requests
// (one per requester, say) current, so that reads need no round trip.
//
// Run resolves every request (GET /v1/resolve/{ns}/{name}), then follows the
// service's events feed from the lowest index of those answers with long
// polls. Each answer of the feed that holds an event that can change a
// resolution (revision.*, instance.*, service.update; see also
// ResolverOptions.FollowNamespace) makes it resolve every request again, once
// per answer however many events it holds: one round trip per request, one
// request after the other. The server does the selection, so the answers are
// exactly what Client.Resolve would answer, the embedding program's hook
// included (though a hook whose choice changes without an event is seen only
// at the next event of the service). Following, resuming after failures and
// reading everything again after a 410 work as in [Watcher]. When resolving
// after an event fails on the way (no answer, 5xx, 429), the resolver keeps
// the previous answers, waits a backoff and reads the same events again, so it
// cannot skip a change. A definite refusal (such as 404 while the service has
// no revision) is the request's answer until a later event changes it.
//
// What the cache reflects:
//
//   - Instances are the passing instances of the resolved revision as of
//     the last resolution: their LastHeartbeatAt and ExpiresAt move with
//     every heartbeat, which makes no event, and are not kept current.
//   - A split without sticky "requester" picks at random on every
//     resolution, so the cached answer is one draw, kept until the next
//     event of the service. Give requesters and sticky splits to callers
//     that cache, or call Client.Resolve per request.
//
// Resolve, ResolveFor, Snapshot and Ready may be called from any goroutine,
// before, during and after Run. Run is called once.
type Resolver struct {
	c        *Client
	ns, name string
	reqs     []ResolveOptions
	opts     ResolverOptions
	ready    chan struct{} // closed after the first resolution

	mu      sync.Mutex
	started bool
	results []Resolved // nil before the first resolution; replaced, never changed
	index   Index
	changed chan struct{} // closed on the next change
}

// NewResolver returns a resolver of ns/name for reqs; with no reqs, for one
// anonymous request (ResolveOptions{}). It does nothing until Run. The
// requests are copied; give each its own Requester for ResolveFor to tell
// them apart.
func NewResolver(c *Client, ns, name string, opts ResolverOptions, reqs ...ResolveOptions) *Resolver {
	opts.Wait, opts.MinBackoff, opts.MaxBackoff = followDefaults(opts.Wait, opts.MinBackoff, opts.MaxBackoff)
	if len(reqs) == 0 {
		reqs = []ResolveOptions{{}}
	}
	own := make([]ResolveOptions, len(reqs))
	for i, r := range reqs {
		r.Labels = maps.Clone(r.Labels)
		r.Headers = r.Headers.Clone()
		own[i] = r
	}
	return &Resolver{
		c: c, ns: ns, name: name, reqs: own, opts: opts,
		ready:   make(chan struct{}),
		changed: make(chan struct{}),
	}
}

// Resolve answers the cached resolution of the first request, or its
// definite refusal (see Resolved.Err); ErrNotResolved before the first
// resolution. It makes no round trip. The slices and maps of the answer are
// shared and must not be changed.
func (r *Resolver) Resolve() (api.Resolution, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.results == nil {
		return api.Resolution{}, ErrNotResolved
	}
	return r.results[0].Resolution, r.results[0].Err
}

// ResolveFor is Resolve for the first request whose Requester is requester.
// A requester that no request names gets an error matching
// ErrInvalidArgument.
func (r *Resolver) ResolveFor(requester string) (api.Resolution, error) {
	i := slices.IndexFunc(r.reqs, func(o ResolveOptions) bool { return o.Requester == requester })
	if i < 0 {
		return api.Resolution{}, fmt.Errorf("%w: the resolver of %s/%s has no request of requester %q", ErrInvalidArgument, r.ns, r.name, requester)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.results == nil {
		return api.Resolution{}, ErrNotResolved
	}
	return r.results[i].Resolution, r.results[i].Err
}

// Snapshot answers the cache, its index and a channel closed at its next
// change, all taken at one moment.
func (r *Resolver) Snapshot() ResolverSnapshot {
	r.mu.Lock()
	defer r.mu.Unlock()
	return ResolverSnapshot{Results: slices.Clone(r.results), Index: r.index, Changed: r.changed}
}

// Ready is closed once every request has its first resolution.
func (r *Resolver) Ready() <-chan struct{} { return r.ready }

// Run keeps the cache current until ctx is done, and then returns ctx's
// error. It returns ErrAlreadyStarted when called a second time.
func (r *Resolver) Run(ctx context.Context) error {
	r.mu.Lock()
	if r.started {
		r.mu.Unlock()
		return ErrAlreadyStarted
	}
	r.started = true
	r.mu.Unlock()

	q := EventQuery{Namespace: r.ns, Service: r.name, Types: serviceChangeTypes(), Wait: r.opts.Wait}
	if r.opts.FollowNamespace {
		q.Service = ""
		q.Types = slices.Compact(slices.Sorted(slices.Values(append(serviceChangeTypes(), urlMapChangeTypes()...))))
	}
	f := follower{
		c:      r.c,
		query:  q,
		bo:     backoff{initial: r.opts.MinBackoff, max: r.opts.MaxBackoff},
		report: r.report,
		sync:   r.sync,
		apply:  r.apply,
	}
	return f.run(ctx)
}

func (r *Resolver) report(err error) {
	if r.opts.OnError != nil {
		r.opts.OnError(err)
	}
}

// sync resolves every request and answers the index to follow from: the
// lowest of the answers'. A refusal carries no index, so when there is one,
// the requests are resolved a second time after a status read, and the
// feed is followed from the status' index: nothing that happens after the
// read is missed.
func (r *Resolver) sync(ctx context.Context) (Index, error) {
	res, idx, err := r.resolveAll(ctx)
	if err != nil {
		return 0, err
	}
	if refused(res) {
		st, err := r.c.Status(ctx)
		if err != nil {
			return 0, err
		}
		if res, idx, err = r.resolveAll(ctx); err != nil {
			return 0, err
		}
		if refused(res) {
			idx = Index(st.EventIndex)
		}
	}
	r.publish(res, idx)
	return idx, nil
}

// apply resolves again when the answer of the feed holds an event that can
// change a resolution. A failure leaves the cache as it was and after where
// it was, so the same events come again.
func (r *Resolver) apply(ctx context.Context, list api.EventList, after uint64) (uint64, error) {
	next := max(after, list.Next)
	affected := false
	for _, ev := range list.Events {
		next = max(next, ev.ID)
		affected = affected || r.affects(ev)
	}
	if !affected {
		r.mu.Lock()
		r.index = Index(next)
		r.mu.Unlock()
		return next, nil
	}
	res, _, err := r.resolveAll(ctx)
	if err != nil {
		return after, err
	}
	// Resolved after the events were read, the answers reflect at least
	// everything up to next.
	r.publish(res, Index(next))
	return next, nil
}

// affects reports whether ev can change a resolution. The server filters
// the feed; this also guards against one that does not.
func (r *Resolver) affects(ev api.Event) bool {
	switch {
	case ev.Namespace != r.ns:
		return false
	case ev.Service == r.name:
		return slices.Contains(serviceChangeTypes(), ev.Type)
	default:
		return r.opts.FollowNamespace && slices.Contains(urlMapChangeTypes(), ev.Type)
	}
}

// resolveAll resolves every request, one after the other, and answers the
// lowest index of the answers (0 when every request was refused). It fails
// on the first failure that may pass, and when ctx is done.
func (r *Resolver) resolveAll(ctx context.Context) ([]Resolved, Index, error) {
	out := make([]Resolved, len(r.reqs))
	var low Index
	found := false
	for i, req := range r.reqs {
		res, idx, err := r.c.Resolve(ctx, r.ns, r.name, req)
		if err != nil && (ctx.Err() != nil || isTransient(err)) {
			return nil, 0, err
		}
		out[i] = Resolved{Request: req, Resolution: res, Err: err}
		if err == nil && (!found || idx < low) {
			low, found = idx, true
		}
	}
	return out, low, nil
}

func refused(res []Resolved) bool {
	return slices.ContainsFunc(res, func(x Resolved) bool { return x.Err != nil })
}

// publish makes res the cache, as of idx, and wakes the subscribers when it
// changed. The first resolution always publishes, waking whoever took a
// snapshot before it.
func (r *Resolver) publish(res []Resolved, idx Index) {
	r.mu.Lock()
	defer r.mu.Unlock()
	first := r.results == nil
	same := !first && slices.EqualFunc(r.results, res, sameResolved)
	r.results, r.index = res, idx
	if !same {
		close(r.changed)
		r.changed = make(chan struct{})
	}
	if first {
		close(r.ready)
	}
}

// sameResolved reports whether two resolutions are the same answer: equal
// but for the instances' heartbeat times, or refusals of the same kind (the
// request ids differ).
func sameResolved(a, b Resolved) bool {
	if (a.Err == nil) != (b.Err == nil) {
		return false
	}
	if a.Err != nil {
		return sameError(a.Err, b.Err)
	}
	return reflect.DeepEqual(withoutHeartbeats(a.Resolution), withoutHeartbeats(b.Resolution))
}

func sameError(a, b error) bool {
	var ea, eb *APIError
	if errors.As(a, &ea) && errors.As(b, &eb) {
		return ea.StatusCode == eb.StatusCode && ea.Type == eb.Type && ea.Message == eb.Message && ea.Details == eb.Details
	}
	return a.Error() == b.Error()
}

func withoutHeartbeats(res api.Resolution) api.Resolution {
	res.Instances = slices.Clone(res.Instances)
	for i := range res.Instances {
		res.Instances[i].LastHeartbeatAt, res.Instances[i].ExpiresAt = time.Time{}, time.Time{}
	}
	return res
}
