package host

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/muster-registry/muster/api"
	"github.com/muster-registry/muster/client"
	"github.com/muster-registry/muster/internal/registry"
)

// BrokerBackend is the backend name under which a [Broker] that is also a
// [Backend] is needed by every endpoint with a topic exposure.
const BrokerBackend = "broker"

// DefaultRetryAfter is the Retry-After of the 503 that a disabled endpoint
// answers, unless Options.RetryAfter says otherwise.
const DefaultRetryAfter = 5 * time.Second

// Errors of the host's lifecycle.
var (
	ErrNotStarted     = errors.New("host: not started")
	ErrAlreadyStarted = errors.New("host: already started")
	ErrStopped        = errors.New("host: stopped")
)

// Options configure a [Host]. Only Namespace and ServiceName are needed with
// a Client; without one the host runs standalone (no registration, no
// definition, no registry backends), as in tests.
type Options struct {
	// Client talks to Muster; nil runs the host standalone.
	Client *client.Client
	// Namespace and ServiceName name the service the host is an instance of.
	Namespace, ServiceName string
	// InstanceID, when set, registers the instance under that id (PUT), so
	// a restarted process takes its id back; otherwise the server picks one.
	InstanceID string
	// RevisionTag, Address, Port and PublicURL describe the instance.
	RevisionTag string
	Address     string
	Port        int
	PublicURL   string
	// HeartbeatTimeout is the instance's heartbeat timeout, in whole
	// seconds (the server's default when zero).
	HeartbeatTimeout time.Duration
	// Backends names the backends the services may need. A name that is
	// not here but is a registry service reference gets a [Remote] backend.
	Backends map[string]Backend
	// Broker carries the topic exposures; needed only if there are some.
	Broker Broker
	// Logger receives the host's logs; nil discards them.
	Logger *slog.Logger
	// RetryAfter is the Retry-After of a disabled endpoint's 503
	// (DefaultRetryAfter).
	RetryAfter time.Duration
	// Watch tunes the watchers of Remote backends made by the host.
	Watch client.WatcherOptions
}

// Host runs services: an API host. Build it with [New], then Start it once,
// Apply changes any number of times and Stop it once.
//
// Start, Apply and Stop may be called from any goroutine; changes are made
// one at a time (a registry change waits for an Apply in progress, and the
// reverse), each under one lock, and the drains they wait for happen after
// the new routing is in place. ServeHTTP and State may be called
// concurrently with everything, any number of times; a request never waits
// for a change.
type Host struct {
	opts Options
	log  *slog.Logger
	cron *cron.Cron

	change sync.Mutex // one change at a time: Start, Apply, registry sync, Stop

	mu        sync.Mutex // guards the fields below
	started   bool
	stopped   bool
	running   []Service            // the services as last applied
	known     map[string]Service   // every handler ever given, by endpoint name
	endpoints map[string]*endpoint // by name
	backends  map[string]*backendRun
	unknown   []string // registry endpoints without a handler here
	hb        *client.Heartbeater

	table  atomic.Pointer[table]
	runCtx context.Context // ends at Stop; handlers of topics and cron get it
	cancel context.CancelFunc
	wg     sync.WaitGroup // the registry follower
}

// endpoint is one running service.
type endpoint struct {
	name    string
	svc     atomic.Pointer[Service] // swapped in place by a change
	enabled atomic.Bool
	// guarded by Host.mu:
	missing   []string
	exposures []*exposure // in Setup order
}

// exposure is one running exposure of an endpoint.
type exposure struct {
	ep     *endpoint
	spec   Exposure                   // Render is stale: read render
	render atomic.Pointer[RenderFunc] // swapped in place by a change
	pat    pattern                    // http
	gate   *gate                      // http and cron: closed when retired
	// topic, guarded by Host.mu: the subscription while enabled
	sub     Subscription
	subGate *gate
	subErr  string
	// cron
	entry   cron.EntryID
	running atomic.Bool
}

// backendRun is a started backend and its watch goroutine.
type backendRun struct {
	name string
	b    Backend
	stop chan struct{}
	done chan struct{}
}

// New returns a host; it does nothing until Start.
func New(opts Options) *Host {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.RetryAfter <= 0 {
		opts.RetryAfter = DefaultRetryAfter
	}
	h := &Host{
		opts:      opts,
		log:       opts.Logger,
		known:     map[string]Service{},
		endpoints: map[string]*endpoint{},
		backends:  map[string]*backendRun{},
		cron: cron.New(cron.WithParser(cron.NewParser(
			cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor))),
	}
	h.table.Store(&table{})
	h.runCtx, h.cancel = context.WithCancel(context.Background())
	return h
}

// Start runs services and, with a Client, stores their definition in
// Muster, registers the instance and keeps it alive, and follows the
// definition in the registry. It returns once the instance is registered;
// the endpoints are enabled as their backends become ready, before or
// after. ctx bounds the start only. On error the host keeps what it
// started: call Stop.
func (h *Host) Start(ctx context.Context, services []Service) error {
	h.change.Lock()
	defer h.change.Unlock()
	h.mu.Lock()
	switch {
	case h.stopped:
		h.mu.Unlock()
		return ErrStopped
	case h.started:
		h.mu.Unlock()
		return ErrAlreadyStarted
	}
	h.mu.Unlock()
	if err := h.validate(services); err != nil {
		return err
	}
	h.mu.Lock()
	h.started = true
	h.mu.Unlock()
	h.cron.Start()
	if err := h.apply(ctx, services); err != nil {
		return err
	}
	c := h.opts.Client
	if c == nil {
		return nil
	}
	if _, err := c.PutDefinition(ctx, h.opts.Namespace, h.opts.ServiceName, definition(services)); err != nil {
		return fmt.Errorf("host: storing the definition: %w", err)
	}
	_, idx, err := c.GetDefinition(ctx, h.opts.Namespace, h.opts.ServiceName)
	if err != nil {
		return fmt.Errorf("host: reading the definition: %w", err)
	}
	hb := client.NewHeartbeater(c, h.opts.Namespace, h.opts.ServiceName, api.RegisterInstanceRequest{
		ID: h.opts.InstanceID, RevisionTag: h.opts.RevisionTag, Address: h.opts.Address, Port: h.opts.Port,
		PublicURL: h.opts.PublicURL, HeartbeatTimeout: int((h.opts.HeartbeatTimeout + time.Second - 1) / time.Second),
	}, client.HeartbeaterOptions{OnEvent: func(ev client.HeartbeatEvent) {
		h.log.Debug("host: heartbeat", "event", ev.Kind.String(), "err", ev.Err)
	}})
	h.mu.Lock()
	h.hb = hb
	h.mu.Unlock()
	if err := hb.Start(h.runCtx); err != nil {
		return fmt.Errorf("host: registering the instance: %w", err)
	}
	h.log.Info("host: registered", "service", h.opts.Namespace+"/"+h.opts.ServiceName, "instance", hb.Instance().ID)
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		h.follow(h.runCtx, idx)
	}()
	return nil
}

// Apply changes the running services to services, by the procedure of
// Start: removed exposures are shut down (a route stops taking requests
// and its requests in flight finish; a consumer finishes its message and
// leaves; a schedule finishes its run), new ones start, changed ones are
// reconfigured in place (a new handler or render function takes the next
// request), untouched ones are left alone; backends no endpoint needs any
// more are stopped after the drains. Then, with a Client, the new
// definition is stored in Muster. ctx bounds the drains and the store:
// when it ends first, Apply returns its error with the change made locally.
func (h *Host) Apply(ctx context.Context, services []Service) error {
	h.change.Lock()
	defer h.change.Unlock()
	h.mu.Lock()
	started, stopped := h.started, h.stopped
	h.mu.Unlock()
	switch {
	case stopped:
		return ErrStopped
	case !started:
		return ErrNotStarted
	}
	if err := h.validate(services); err != nil {
		return err
	}
	if err := h.apply(ctx, services); err != nil {
		return err
	}
	if c := h.opts.Client; c != nil {
		if _, err := c.PutDefinition(ctx, h.opts.Namespace, h.opts.ServiceName, definition(services)); err != nil {
			return fmt.Errorf("host: storing the definition: %w", err)
		}
	}
	return nil
}

// Stop deregisters the instance, shuts every exposure down with the drains
// of Apply, stops the backends and the schedules. ctx bounds it all.
func (h *Host) Stop(ctx context.Context) error {
	h.cancel() // ends the follower, and the contexts of topic and cron calls
	h.wg.Wait()
	h.change.Lock()
	defer h.change.Unlock()
	h.mu.Lock()
	if h.stopped {
		h.mu.Unlock()
		return nil
	}
	h.stopped = true
	hb := h.hb
	h.mu.Unlock()
	var errs []error
	if hb != nil {
		if err := hb.Stop(ctx); err != nil && !errors.Is(err, context.Canceled) {
			errs = append(errs, fmt.Errorf("host: deregistering: %w", err))
		}
	}
	errs = append(errs, h.apply(ctx, nil))
	select {
	case <-h.cron.Stop().Done():
	case <-ctx.Done():
		errs = append(errs, ctx.Err())
	}
	return errors.Join(errs...)
}

// apply is the change procedure shared by Start, Apply, the registry sync
// and Stop. The caller holds h.change and has validated services.
func (h *Host) apply(ctx context.Context, services []Service) error {
	h.mu.Lock()
	var drains []func(context.Context) error
	want := map[string]bool{}
	for _, s := range services {
		want[s.Name] = true
	}
	for name, ep := range h.endpoints {
		if !want[name] {
			for _, x := range ep.exposures {
				drains = append(drains, h.retire(x))
			}
			ep.enabled.Store(false)
			delete(h.endpoints, name)
			h.log.Info("host: endpoint removed", "endpoint", name)
		}
	}
	for _, s := range services {
		svc := s
		ep := h.endpoints[s.Name]
		if ep == nil {
			ep = &endpoint{name: s.Name}
			h.endpoints[s.Name] = ep
			h.log.Info("host: endpoint added", "endpoint", s.Name)
		}
		ep.svc.Store(&svc)
		old := map[string]*exposure{}
		for _, x := range ep.exposures {
			old[x.spec.key()] = x
		}
		next := make([]*exposure, 0, len(s.Setup))
		for _, spec := range s.Setup {
			if x := old[spec.key()]; x != nil {
				x.render.Store(&spec.Render)
				delete(old, spec.key())
				next = append(next, x)
				continue
			}
			x, err := h.open(ep, spec)
			if err != nil {
				h.mu.Unlock()
				return err
			}
			next = append(next, x)
		}
		for _, x := range ep.exposures {
			if _, gone := old[x.spec.key()]; gone {
				drains = append(drains, h.retire(x))
			}
		}
		ep.exposures = next
		h.known[s.Name] = s
	}
	h.running = slices.Clone(services)
	h.table.Store(h.buildTable(services))

	needed := map[string]bool{}
	for _, s := range services {
		for _, b := range h.needs(s) {
			needed[b] = true
		}
	}
	var unneeded []*backendRun
	for name, run := range h.backends {
		if !needed[name] {
			unneeded = append(unneeded, run)
			delete(h.backends, name)
		}
	}
	var errs []error
	for _, s := range services {
		for _, name := range h.needs(s) {
			if h.backends[name] != nil {
				continue
			}
			if err := h.startBackend(ctx, name); err != nil {
				errs = append(errs, err)
			}
		}
	}
	drains = append(drains, h.evaluate()...)
	h.mu.Unlock()

	// The new routing is in place: wait for what the old one let in.
	for _, d := range drains {
		errs = append(errs, d(ctx))
	}
	for _, run := range unneeded {
		close(run.stop)
		<-run.done
		if err := run.b.Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("host: stopping backend %q: %w", run.name, err))
		}
		h.log.Info("host: backend stopped", "backend", run.name)
	}
	return errors.Join(errs...)
}

// needs answers the backends of s, with the broker when s consumes topics
// and the broker is a Backend.
func (h *Host) needs(s Service) []string {
	out := slices.Clone(s.Backends)
	if _, ok := h.opts.Broker.(Backend); ok && !slices.Contains(out, BrokerBackend) &&
		slices.ContainsFunc(s.Setup, func(x Exposure) bool { return x.Type == api.ExposureTopic }) {
		out = append(out, BrokerBackend)
	}
	return out
}

// startBackend starts a backend and its watch. The caller holds h.mu.
func (h *Host) startBackend(ctx context.Context, name string) error {
	b, ok := h.opts.Backends[name]
	if !ok && name == BrokerBackend {
		b, ok = h.opts.Broker.(Backend)
	}
	if !ok {
		rb, err := Remote(h.opts.Client, name, h.opts.Watch)
		if err != nil {
			return err
		}
		b = rb
	}
	if err := b.Start(ctx); err != nil {
		return fmt.Errorf("host: starting backend %q: %w", name, err)
	}
	run := &backendRun{name: name, b: b, stop: make(chan struct{}), done: make(chan struct{})}
	h.backends[name] = run
	h.log.Info("host: backend started", "backend", name)
	go func() {
		defer close(run.done)
		for {
			// Take the channel before evaluating, so no change is lost.
			_, changed := b.Ready()
			h.reevaluate()
			select {
			case <-changed:
			case <-run.stop:
				return
			}
		}
	}()
	return nil
}

// reevaluate enables and disables endpoints after a backend changed.
func (h *Host) reevaluate() {
	h.mu.Lock()
	drains := h.evaluate()
	h.mu.Unlock()
	for _, d := range drains {
		if err := d(h.runCtx); err != nil {
			h.log.Warn("host: drain", "err", err)
		}
	}
}

// evaluate sets every endpoint's state from its backends' and starts or
// stops its topic consumers to match; it answers the drains of the
// consumers it stopped. The caller holds h.mu.
func (h *Host) evaluate() []func(context.Context) error {
	var drains []func(context.Context) error
	for _, ep := range h.endpoints {
		var missing []string
		for _, name := range h.needs(*ep.svc.Load()) {
			run := h.backends[name]
			if run == nil {
				missing = append(missing, name)
				continue
			}
			if ok, _ := run.b.Ready(); !ok {
				missing = append(missing, name)
			}
		}
		enabled := len(missing) == 0
		ep.missing = missing
		if ep.enabled.Swap(enabled) != enabled {
			if enabled {
				h.log.Info("host: endpoint enabled", "endpoint", ep.name)
			} else {
				h.log.Info("host: endpoint disabled", "endpoint", ep.name, "missing", missing)
			}
		}
		for _, x := range ep.exposures {
			if x.spec.Type != api.ExposureTopic {
				continue
			}
			switch {
			case enabled && x.sub == nil:
				h.subscribe(x)
			case !enabled && x.sub != nil:
				drains = append(drains, h.unsubscribe(x))
			}
		}
	}
	return drains
}

// open starts an exposure (a topic consumer waits for its endpoint to be
// enabled). The caller holds h.mu.
func (h *Host) open(ep *endpoint, spec Exposure) (*exposure, error) {
	x := &exposure{ep: ep, spec: spec, gate: &gate{}}
	x.render.Store(&spec.Render)
	switch spec.Type {
	case api.ExposureHTTP:
		x.pat = parsePattern(spec.Path)
	case api.ExposureCron:
		id, err := h.cron.AddFunc(spec.Schedule, func() { h.runCron(x) })
		if err != nil {
			return nil, fmt.Errorf("%w: endpoint %q: schedule %q: %v", ErrInvalidService, ep.name, spec.Schedule, err)
		}
		x.entry = id
	}
	return x, nil
}

// retire takes an exposure out of service and answers the wait for its
// work in flight. The caller holds h.mu, and replaces the routing table
// before the wait.
func (h *Host) retire(x *exposure) func(context.Context) error {
	switch x.spec.Type {
	case api.ExposureTopic:
		if x.sub != nil {
			return h.unsubscribe(x)
		}
	case api.ExposureCron:
		h.cron.Remove(x.entry)
	}
	return x.gate.close
}

func (h *Host) subscribe(x *exposure) {
	g := &gate{}
	sub, err := h.opts.Broker.Subscribe(x.spec.Topic, func(m Message) {
		if !g.enter() {
			return
		}
		defer g.leave()
		h.invoke(x, &m, time.Now())
	})
	if err != nil {
		x.subErr = err.Error()
		h.log.Warn("host: subscribing", "endpoint", x.ep.name, "topic", x.spec.Topic, "err", err)
		return
	}
	x.sub, x.subGate, x.subErr = sub, g, ""
}

// unsubscribe stops a consumer; the caller holds h.mu.
func (h *Host) unsubscribe(x *exposure) func(context.Context) error {
	if err := x.sub.Unsubscribe(); err != nil {
		h.log.Warn("host: unsubscribing", "endpoint", x.ep.name, "topic", x.spec.Topic, "err", err)
	}
	g := x.subGate
	x.sub, x.subGate = nil, nil
	return g.close
}

func (h *Host) runCron(x *exposure) {
	if !x.ep.enabled.Load() || !x.gate.enter() {
		return
	}
	defer x.gate.leave()
	if !x.running.CompareAndSwap(false, true) {
		h.log.Warn("host: cron run skipped: the previous one is still running", "endpoint", x.ep.name, "schedule", x.spec.Schedule)
		return
	}
	defer x.running.Store(false)
	h.invoke(x, nil, time.Now())
}

// gate counts the work in flight of one exposure and refuses new work once
// closed. It is safe for concurrent use.
type gate struct {
	mu     sync.Mutex
	closed bool
	n      int
	idle   chan struct{} // made by close when work is in flight
}

func (g *gate) enter() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.n++
	return true
}

func (g *gate) leave() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.n--; g.n == 0 && g.idle != nil {
		close(g.idle)
		g.idle = nil
	}
}

// close refuses new work and waits for the work in flight, or for ctx.
func (g *gate) close(ctx context.Context) error {
	g.mu.Lock()
	g.closed = true
	if g.n == 0 {
		g.mu.Unlock()
		return nil
	}
	if g.idle == nil {
		g.idle = make(chan struct{})
	}
	idle := g.idle
	g.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("host: drain: %w", ctx.Err())
	}
}

// follow applies the registry's changes to the service's definition: it
// long-polls service.update events of its own service from after, and on
// each batch syncs with the stored definition.
func (h *Host) follow(ctx context.Context, after client.Index) {
	c := h.opts.Client
	wait := 100 * time.Millisecond
	next := uint64(after)
	for ctx.Err() == nil {
		list, err := c.Events(ctx, client.EventQuery{
			Namespace: h.opts.Namespace, Service: h.opts.ServiceName,
			Types: []string{api.EventServiceUpdate}, After: next, Wait: 30 * time.Second,
		})
		if err == nil && len(list.Events) > 0 {
			_, err = h.sync(ctx)
		}
		if errors.Is(err, client.ErrEventsCompacted) {
			// Missed changes: the stored definition has them all. Follow
			// from the index of the definition applied, so that a change
			// made after that read is not missed.
			var idx client.Index
			if idx, err = h.sync(ctx); err == nil {
				next = uint64(idx)
				continue
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			h.log.Warn("host: following the definition", "err", err)
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			wait = min(2*wait, 15*time.Second)
			continue
		}
		wait = 100 * time.Millisecond
		if list.Next > next {
			next = list.Next
		}
	}
}

// sync applies the registry's definition when it differs from what runs:
// its exposures and registry backends, for the endpoints whose handlers the
// host knows (the others are reported in State.Unknown). It answers the
// index of the definition it read.
func (h *Host) sync(ctx context.Context) (client.Index, error) {
	h.change.Lock()
	defer h.change.Unlock()
	def, idx, err := h.opts.Client.GetDefinition(ctx, h.opts.Namespace, h.opts.ServiceName)
	if err != nil {
		return 0, err
	}
	h.mu.Lock()
	if h.stopped {
		h.mu.Unlock()
		return idx, nil
	}
	running := h.running
	var want []Service
	var unknown []string
	for _, ep := range def.Endpoints {
		k, ok := h.known[ep.Name]
		if !ok {
			unknown = append(unknown, ep.Name)
			continue
		}
		s := Service{Name: ep.Name, Handler: k.Handler, Permissions: ep.Permissions}
		for _, b := range k.Backends {
			if !isServiceRef(b) {
				s.Backends = append(s.Backends, b)
			}
		}
		s.Backends = append(s.Backends, ep.Backends...)
		for _, x := range ep.Exposures {
			s.Setup = append(s.Setup, Exposure{Type: x.Type, Method: x.Method, Path: x.Path,
				Topic: x.Topic, Schedule: x.Schedule, Render: renderFor(k, x)})
		}
		want = append(want, s)
	}
	h.unknown = unknown
	h.mu.Unlock()
	if len(unknown) > 0 {
		h.log.Warn("host: the registry's definition has endpoints without a handler here", "endpoints", unknown)
	}
	cur, next := definition(running), definition(want)
	d := registry.DiffDefinitions(&cur, &next)
	if len(d.Added)+len(d.Removed)+len(d.Changed) == 0 {
		return idx, nil
	}
	if err := h.validate(want); err != nil {
		h.log.Warn("host: the registry's definition cannot run here", "err", err)
		return idx, nil
	}
	h.log.Info("host: applying the registry's definition", "added", d.Added, "removed", d.Removed, "changed", d.Changed)
	return idx, h.apply(ctx, want)
}

// renderFor picks the render function of a route that the registry
// defines: that of the same exposure in the host's service, else that of
// its first exposure of the same type.
func renderFor(s Service, x api.Exposure) RenderFunc {
	for _, e := range s.Setup {
		if e.wire() == x {
			return e.Render
		}
	}
	for _, e := range s.Setup {
		if e.Type == x.Type {
			return e.Render
		}
	}
	return nil
}
