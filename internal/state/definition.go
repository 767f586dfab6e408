package state

import (
	"cmp"
	"slices"
	"time"

	"github.com/muster-registry/muster/api"
	"github.com/muster-registry/muster/internal/registry"
)

// epRef names one endpoint of one service.
type epRef struct {
	svc      Key
	endpoint string
}

// endpointState is the derived readiness of one endpoint: enabled while
// every backend has at least one live instance of an acceptable revision.
type endpointState struct {
	backends []registry.Backend
	refs     []string // the backends as written, in definition order
	enabled  bool
	missing  []string
}

// readiness is the Store's derived index for the endpoint lifecycle. It is
// rebuilt from the services on restore, never stored: snapshots hold only
// definitions and instances.
type readiness struct {
	// users maps a backend service to the endpoints that need it, so an
	// instance change rechecks only those endpoints.
	users map[Key]map[epRef]struct{}
}

func newReadiness() readiness { return readiness{users: map[Key]map[epRef]struct{}{}} }

// satisfied reports whether svc has a live instance that b accepts.
func (s *Store) satisfied(b registry.Backend) bool {
	svc := s.services[Key{b.Namespace, b.Name}]
	if svc == nil {
		return false
	}
	for tag, n := range svc.instTags {
		if n > 0 && b.Accepts(tag) {
			return true
		}
	}
	return false
}

// evaluate recomputes one endpoint's state; it reports whether it flipped.
func (s *Store) evaluate(st *endpointState) bool {
	var missing []string
	for i, b := range st.backends {
		if !s.satisfied(b) {
			missing = append(missing, st.refs[i])
		}
	}
	was := st.enabled
	st.enabled, st.missing = len(missing) == 0, missing
	return was != st.enabled
}

func (t *txn) emitEndpoint(ref epRef, st *endpointState) {
	typ := api.EventEndpointDisabled
	if st.enabled {
		typ = api.EventEndpointEnabled
	}
	missing := st.missing
	if missing == nil {
		missing = []string{}
	}
	t.emit(typ, ref.svc.Namespace, ref.svc.Name, t.now, api.EndpointStatePayload{Endpoint: ref.endpoint, Missing: missing})
}

// backendChanged rechecks the endpoints that need service k after its
// instances changed, emitting an event for each one that flipped, in a fixed
// order (replicas must emit the same events in the same order).
func (s *Store) backendChanged(t *txn, k Key) {
	users := s.ready.users[k]
	if len(users) == 0 {
		return
	}
	refs := make([]epRef, 0, len(users))
	for r := range users {
		refs = append(refs, r)
	}
	slices.SortFunc(refs, func(a, b epRef) int {
		return cmp.Or(cmp.Compare(a.svc.Namespace, b.svc.Namespace), cmp.Compare(a.svc.Name, b.svc.Name), cmp.Compare(a.endpoint, b.endpoint))
	})
	for _, r := range refs {
		st := s.services[r.svc].endpoints[r.endpoint]
		if s.evaluate(st) && t != nil {
			t.emitEndpoint(r, st)
		}
	}
}

// countInstance keeps the per-revision instance counts that readiness reads.
func (svc *service) countInstance(tag string, delta int) {
	if svc.instTags == nil {
		svc.instTags = map[string]int{}
	}
	svc.instTags[tag] += delta
	if svc.instTags[tag] <= 0 {
		delete(svc.instTags, tag)
	}
}

// index installs a service's endpoints in the readiness index, computing
// their state; it returns the new states by endpoint name.
func (s *Store) index(k Key, def *api.Definition) map[string]*endpointState {
	out := make(map[string]*endpointState, len(def.Endpoints))
	for _, ep := range def.Endpoints {
		st := &endpointState{refs: ep.Backends}
		for _, ref := range ep.Backends {
			b, err := registry.ParseBackend(ref)
			if err != nil {
				panic("state: a stored definition has a bad backend: " + err.Error()) // validated before it was stored
			}
			st.backends = append(st.backends, b)
			bk := Key{b.Namespace, b.Name}
			if s.ready.users[bk] == nil {
				s.ready.users[bk] = map[epRef]struct{}{}
			}
			s.ready.users[bk][epRef{k, ep.Name}] = struct{}{}
		}
		s.evaluate(st)
		out[ep.Name] = st
	}
	return out
}

// unindex removes a service's endpoints from the readiness index.
func (s *Store) unindex(k Key, svc *service) {
	for name, st := range svc.endpoints {
		for _, b := range st.backends {
			bk := Key{b.Namespace, b.Name}
			delete(s.ready.users[bk], epRef{k, name})
			if len(s.ready.users[bk]) == 0 {
				delete(s.ready.users, bk)
			}
		}
	}
	svc.endpoints = nil
}

// SetDefinition stores a service's definition (validated here too, so the
// log can never hold a bad one) and emits service.update with the diff, then
// endpoint.enabled or endpoint.disabled for every endpoint that is new, or
// whose state the change flipped. A definition equal to the stored one
// changes nothing.
func (s *Store) SetDefinition(now time.Time, k Key, def *api.Definition) (api.DefinitionDiff, error) {
	if err := registry.ValidateDefinition(def); err != nil {
		return api.DefinitionDiff{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var old *api.Definition
	if svc := s.services[k]; svc != nil {
		old = svc.definition
	}
	diff := registry.DiffDefinitions(old, def)
	if old != nil && len(diff.Added)+len(diff.Removed)+len(diff.Changed) == 0 {
		return diff, nil
	}
	t := s.begin(now)
	defer t.commit()
	svc := s.serviceFor(k)
	before := svc.endpoints
	s.unindex(k, svc)
	svc.definition = def
	svc.endpoints = s.index(k, def)
	t.emit(api.EventServiceUpdate, k.Namespace, k.Name, now, diff)
	for _, ep := range def.Endpoints {
		st := svc.endpoints[ep.Name]
		prev, existed := before[ep.Name]
		if !existed || prev.enabled != st.enabled || !slices.Equal(prev.missing, st.missing) {
			t.emitEndpoint(epRef{k, ep.Name}, st)
		}
	}
	return diff, nil
}

// Definition returns a service's definition, or nil.
func (s *Store) Definition(k Key) (*api.Definition, uint64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if svc := s.services[k]; svc != nil {
		return svc.definition, s.events.last
	}
	return nil, s.events.last
}

// Readiness returns the state of a service's endpoints, in definition order.
func (s *Store) Readiness(k Key) (api.Readiness, uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	svc := s.services[k]
	if svc == nil || svc.definition == nil {
		return api.Readiness{}, s.events.last, registry.NotFound("definition of %s", k)
	}
	r := api.Readiness{Ready: true, Endpoints: make([]api.EndpointReadiness, 0, len(svc.definition.Endpoints))}
	for _, ep := range svc.definition.Endpoints {
		st := svc.endpoints[ep.Name]
		missing := slices.Clone(st.missing)
		if missing == nil {
			missing = []string{}
		}
		r.Endpoints = append(r.Endpoints, api.EndpointReadiness{Name: ep.Name, Enabled: st.enabled, Missing: missing})
		r.Ready = r.Ready && st.enabled
	}
	return r, s.events.last, nil
}

// Definitions returns every stored definition by "ns/name" (of namespace,
// when not empty) and every service name there, for graphs.
func (s *Store) Definitions(namespace string) (map[string]*api.Definition, []string, uint64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	defs := map[string]*api.Definition{}
	var names []string
	for k, svc := range s.services {
		if namespace != "" && k.Namespace != namespace {
			continue
		}
		names = append(names, k.String())
		if svc.definition != nil {
			defs[k.String()] = svc.definition
		}
	}
	return defs, names, s.events.last
}

// rebuildReadiness recomputes the derived index after a restore, without events.
func (s *Store) rebuildReadiness() {
	s.ready = newReadiness()
	for _, svc := range s.services {
		svc.instTags = nil
		for _, inst := range svc.instances {
			svc.countInstance(inst.RevisionTag, 1)
		}
	}
	for k, svc := range s.services {
		if svc.definition != nil {
			svc.endpoints = s.index(k, svc.definition)
		}
	}
}
