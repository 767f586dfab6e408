// Package state is Muster's in-memory, indexed state: services with their
// revisions and instances, and the retained window of the event feed. Only the
// FSM writes to it, in the order of the replicated log; everything else reads.
//
// Concurrency: a Store is safe for concurrent use. Writes take an exclusive
// lock and are applied one at a time by the FSM; reads take a shared lock and
// return values that are never modified afterwards (records are replaced, not
// mutated), so callers may keep them without copying.
package state

import (
	"bytes"
	"cmp"
	"encoding/json"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/muster-registry/muster/api"
	"github.com/muster-registry/muster/internal/registry"
)

// DefaultRetainEvents is how many of the newest events a Store keeps unless told otherwise.
const DefaultRetainEvents = 100_000

// Revision is one stored revision. It is immutable once stored.
type Revision struct {
	Tag       string            `json:"tag"`
	CreatedAt time.Time         `json:"created_at"`
	Metadata  map[string]string `json:"metadata,omitempty"`
	// NotDefault remembers an explicit is_default:false: the default rule
	// never picks this revision by itself (only an explicit true does).
	NotDefault bool `json:"not_default,omitempty"`
}

// Instance is one stored instance registration. It is immutable once stored:
// a change stores a new value.
type Instance struct {
	Namespace   string `json:"namespace"`
	Service     string `json:"service"`
	ID          string `json:"id"`
	RevisionTag string `json:"revision_tag,omitempty"`
	Address     string `json:"address,omitempty"`
	// Port (0-65535) and HeartbeatTimeout (seconds, 3-120) are validated
	// before they are stored; as two int32 side by side they keep the record
	// a size class smaller, which a million records notice.
	Port             int32     `json:"port,omitempty"`
	HeartbeatTimeout int32     `json:"heartbeat_timeout"`
	PublicURL        string    `json:"public_url,omitempty"`
	Endpoints        []string  `json:"endpoints,omitempty"`
	Tags             []string  `json:"tags,omitempty"`
	Metadata         Metadata  `json:"metadata,omitempty"`
	RegisteredAt     time.Time `json:"registered_at"`
	// RegIndex is the log index of the command that made this registration.
	// It names the registration: a replaced or re-registered instance gets a new one.
	RegIndex uint64 `json:"reg_index"`
	// Token is the first heartbeat token of the registration; later tokens
	// live in the lease table, outside the log.
	Token string `json:"token"`
}

// Key names a service.
type Key struct {
	Namespace string
	Name      string
}

// String returns "ns/name".
func (k Key) String() string { return k.Namespace + "/" + k.Name }

// InstanceKey names an instance.
type InstanceKey struct {
	Namespace string
	Service   string
	ID        string
}

// String returns "ns/service/id".
func (k InstanceKey) String() string { return k.Namespace + "/" + k.Service + "/" + k.ID }

// Key returns the key of the instance.
func (i *Instance) Key() InstanceKey { return InstanceKey{i.Namespace, i.Service, i.ID} }

type service struct {
	revisions  map[string]*Revision
	defaultTag string
	instances  map[string]*Instance
	policy     *api.Policy // nil: the defaults (latest_semver, no routes)
	definition *api.Definition
	// Derived, rebuilt on restore: live instances per revision tag, and the
	// state of each endpoint of the definition.
	instTags  map[string]int
	endpoints map[string]*endpointState
	// sorted caches the instances sorted by id for reads. Writers, holding
	// the write lock, clear it on every change of instances; the first read
	// after, holding the read lock, fills it (concurrent readers may both
	// build it, to the same result). A stored slice is never modified.
	sorted atomic.Pointer[[]*Instance]
}

func (s *service) empty() bool {
	return len(s.revisions) == 0 && len(s.instances) == 0 && s.policy == nil && s.definition == nil
}

func (s *service) tags() []string {
	tags := make([]string, 0, len(s.revisions))
	for t := range s.revisions {
		tags = append(tags, t)
	}
	return tags
}

// eligible returns the tags the default rule may pick: all but those
// registered with is_default:false.
func (s *service) eligible() []string {
	tags := make([]string, 0, len(s.revisions))
	for t, r := range s.revisions {
		if !r.NotDefault {
			tags = append(tags, t)
		}
	}
	return tags
}

// rule is the service's default rule.
func (s *service) rule() string {
	if s.policy == nil || s.policy.DefaultRule == "" {
		return api.RuleLatestSemver
	}
	return s.policy.DefaultRule
}

// ruleChoice is the default that the rule picks afresh among the eligible tags.
func (s *service) ruleChoice() string {
	return registry.DefaultByRule(s.rule(), s.eligible(), s.defaultTag)
}

// Observer is told of every instance registration that starts or ends, in log
// order, while the Store's write lock is held: it must be quick and must not
// call back into the Store. The lease table is the observer.
type Observer interface {
	// InstanceAdded is called when a registration starts (also for each
	// instance after a restore, once Reset has been called), and when a
	// patch replaces its record: same RegIndex, perhaps a new timeout.
	InstanceAdded(inst *Instance)
	// InstanceRemoved is called when a registration ends.
	InstanceRemoved(inst *Instance)
	// Reset is called before a restore re-adds every instance.
	Reset()
}

// ParallelObserver is an Observer whose InstanceAdded may be called from
// several goroutines at once. A restore, which adds every instance, then
// spreads the calls over the CPUs; all other calls stay one at a time, in
// log order.
type ParallelObserver interface {
	Observer
	// AddsInParallel marks the implementation; it is never called.
	AddsInParallel()
}

// Store is the state. The zero value is not usable: call New.
type Store struct {
	mu       sync.RWMutex
	services map[Key]*service
	events   ring
	notify   chan struct{}
	observer Observer
	ready    readiness
	intern   *interner // guarded by mu (write lock)
}

// New returns an empty Store that retains the newest retainEvents events
// (DefaultRetainEvents when retainEvents <= 0) and reports instance changes to
// obs, which may be nil.
func New(retainEvents int, obs Observer) *Store {
	if retainEvents <= 0 {
		retainEvents = DefaultRetainEvents
	}
	return &Store{
		services: make(map[Key]*service),
		events:   newRing(retainEvents),
		notify:   make(chan struct{}),
		observer: obs,
		ready:    newReadiness(),
		intern:   newInterner(),
	}
}

// Index returns the id of the newest event.
func (s *Store) Index() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.events.last
}

// Watch returns a channel that is closed by the next write that appends an
// event. Take it before reading, then wait on it, to miss nothing.
func (s *Store) Watch() <-chan struct{} {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.notify
}

// txn collects the events of one write; commit appends them and wakes watchers.
type txn struct {
	s      *Store
	now    time.Time
	events []api.Event
	// scratch holds the payloads emitRemoved encodes, one after the other;
	// commit copies each into its event's frame.
	scratch []byte
}

func (s *Store) begin(now time.Time) *txn { return &txn{s: s, now: now} }

// emit records an event of the write. The payload is encoded here so that the
// stored bytes are fixed by the write, not by later changes.
func (t *txn) emit(typ, ns, svc string, at time.Time, payload any) {
	raw, ok := appendPayloadJSON(nil, payload)
	if !ok {
		if p, isInst := payload.(instancePayload); isInst {
			payload = p.wire()
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false) // ">=2.0.0" stays readable in payloads
		if err := enc.Encode(payload); err != nil {
			// Payloads are our own structs; failing to encode one is a bug that
			// would make replicas diverge if we carried on.
			panic("state: encoding event payload: " + err.Error())
		}
		raw = bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	}
	t.events = append(t.events, api.Event{Type: typ, Namespace: ns, Service: svc, Time: at, Payload: raw})
}

// emitRemoved is emit for an api.InstanceRemovedPayload, encoded into the
// write's scratch buffer rather than a buffer of its own: an expiry batch
// emits thousands.
func (t *txn) emitRemoved(typ, ns, svc string, at time.Time, p *api.InstanceRemovedPayload) {
	n := len(t.scratch)
	b, ok := appendRemovedJSON(t.scratch, p)
	if !ok {
		t.emit(typ, ns, svc, at, *p)
		return
	}
	t.scratch = b
	t.events = append(t.events, api.Event{Type: typ, Namespace: ns, Service: svc, Time: at, Payload: b[n:len(b):len(b)]})
}

// appendPayloadJSON encodes the payloads of the events every registration,
// deregistration and expiry makes by hand; ok is false for any other
// payload, which emit gives to encoding/json.
func appendPayloadJSON(b []byte, payload any) (_ []byte, ok bool) {
	switch p := payload.(type) {
	case instancePayload:
		return AppendInstanceJSON(b, &p.view, p.md)
	case api.InstanceRemovedPayload:
		return appendRemovedJSON(b, &p)
	}
	return nil, false
}

func (t *txn) commit() {
	if len(t.events) == 0 {
		return
	}
	for _, e := range t.events {
		t.s.events.push(e)
	}
	close(t.s.notify)
	t.s.notify = make(chan struct{})
}

func (s *Store) serviceFor(k Key) *service {
	svc := s.services[k]
	if svc == nil {
		svc = &service{revisions: make(map[string]*Revision), instances: make(map[string]*Instance)}
		s.services[k] = svc
	}
	return svc
}

func (s *Store) dropIfEmpty(k Key) {
	if svc := s.services[k]; svc != nil && svc.empty() {
		delete(s.services, k)
	}
}

// ServiceSummary describes one service for listing.
type ServiceSummary struct {
	Key
	Default   *api.Revision
	Revisions int
	Instances []*Instance // in no particular order; not to be modified
}

// Services returns the services of namespace (all when empty), sorted by key,
// with the newest event id.
func (s *Store) Services(namespace string) ([]ServiceSummary, uint64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]ServiceSummary, 0, len(s.services))
	for k, svc := range s.services {
		if namespace != "" && k.Namespace != namespace {
			continue
		}
		sum := ServiceSummary{Key: k, Revisions: len(svc.revisions), Instances: instancesAnyOrder(svc)}
		if svc.defaultTag != "" {
			r := revisionView(k, svc, svc.revisions[svc.defaultTag])
			sum.Default = &r
		}
		out = append(out, sum)
	}
	slices.SortFunc(out, func(a, b ServiceSummary) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	return out, s.events.last
}

// Counts returns how many namespaces, services, revisions and instances are stored.
func (s *Store) Counts() (namespaces, services, revisions, instances int) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	nss := make(map[string]struct{})
	for k, svc := range s.services {
		nss[k.Namespace] = struct{}{}
		revisions += len(svc.revisions)
		instances += len(svc.instances)
	}
	return len(nss), len(s.services), revisions, instances
}

func revisionView(k Key, svc *service, r *Revision) api.Revision {
	md := r.Metadata
	if md == nil {
		md = map[string]string{}
	}
	return api.Revision{
		Namespace: k.Namespace, Name: k.Name, RevisionTag: r.Tag,
		IsDefault: svc.defaultTag == r.Tag, CreatedAt: r.CreatedAt, Metadata: md,
	}
}

// notFoundService is the error for a service with nothing stored.
func notFoundService(k Key) error { return registry.NotFound("service %s", k) }
