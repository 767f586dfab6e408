package state

import (
	"cmp"
	"runtime"
	"slices"
	"time"

	"github.com/muster-registry/muster/api"
	"github.com/muster-registry/muster/internal/registry"
)

// RegisterInstance stores a new registration. With replace false an existing
// registration of the same id is refused with ErrInstanceExists; with replace
// true it is ended (its token stops working) and reported as replaced. The
// instance must be validated and carry its RegIndex and Token; the Store
// owns it from then on (its strings are replaced by shared equal copies).
func (s *Store) RegisterInstance(now time.Time, inst *Instance, replace bool) (replaced bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.intern.instance(inst)
	k := Key{inst.Namespace, inst.Service}
	svc := s.serviceFor(k)
	old := svc.instances[inst.ID]
	if old != nil && !replace {
		return false, registry.ErrInstanceExists
	}
	t := s.begin(now)
	defer t.commit()
	if old != nil {
		svc.countInstance(old.RevisionTag, -1)
		if s.observer != nil {
			s.observer.InstanceRemoved(old)
		}
	}
	svc.instances[inst.ID] = inst
	svc.sorted.Store(nil)
	svc.countInstance(inst.RevisionTag, 1)
	if s.observer != nil {
		s.observer.InstanceAdded(inst)
	}
	typ := api.EventInstanceJoin
	if old != nil {
		typ = api.EventInstanceUpdate
	}
	t.emit(typ, k.Namespace, k.Name, now, eventInstance(inst, now, now.Add(time.Duration(inst.HeartbeatTimeout)*time.Second)))
	s.backendChanged(t, k)
	return old != nil, nil
}

// TakeOver stores inst as a new registration in place of dead, a
// registration of the same id that the leader saw past its deadline: if
// dead is still the live registration it ends with an instance.timeout
// event stamped with its deadline, then inst joins. Both happen in one
// write, so endpoints that need the service are rechecked once, after both,
// and never flap. A live registration other than dead is refused with
// ErrInstanceExists and nothing changes. The Store owns inst from then on,
// as with RegisterInstance.
func (s *Store) TakeOver(now time.Time, inst *Instance, dead Expiry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.intern.instance(inst)
	k := Key{inst.Namespace, inst.Service}
	svc := s.serviceFor(k)
	old := svc.instances[inst.ID]
	if old != nil && old.RegIndex != dead.RegIndex {
		return registry.ErrInstanceExists
	}
	t := s.begin(now)
	defer t.commit()
	if old != nil {
		s.removeInstance(k, svc, old)
		t.emit(api.EventInstanceTimeout, k.Namespace, k.Name, dead.Deadline, api.InstanceRemovedPayload{ID: old.ID, RevisionTag: old.RevisionTag, Deadline: dead.Deadline})
		svc = s.serviceFor(k) // removing the last instance may have dropped the service
	}
	svc.instances[inst.ID] = inst
	svc.sorted.Store(nil)
	svc.countInstance(inst.RevisionTag, 1)
	if s.observer != nil {
		s.observer.InstanceAdded(inst)
	}
	t.emit(api.EventInstanceJoin, k.Namespace, k.Name, now, eventInstance(inst, now, now.Add(time.Duration(inst.HeartbeatTimeout)*time.Second)))
	s.backendChanged(t, k)
	return nil
}

// EventInstance is the api.Instance written into instance events: the stored
// fields, status passing, and the lease as the command states it. Being
// computed from the command alone, it is the same on every replica.
func EventInstance(inst *Instance, lastBeat, expires time.Time) api.Instance {
	return eventInstance(inst, lastBeat, expires).wire()
}

// instancePayload is EventInstance as emit takes it: the wire form without
// its metadata map, and the stored metadata, which the payload's encoder
// writes from its pairs.
type instancePayload struct {
	view api.Instance
	md   Metadata
}

func eventInstance(inst *Instance, lastBeat, expires time.Time) instancePayload {
	v := InstanceView(inst, false)
	v.Status = api.StatusPassing
	v.LastHeartbeatAt = lastBeat
	v.ExpiresAt = expires
	return instancePayload{view: v, md: inst.Metadata}
}

// wire is the payload as an api.Instance, metadata included.
func (p instancePayload) wire() api.Instance {
	v := p.view
	v.Metadata = p.md.WireMap()
	return v
}

// InstanceView converts a stored instance to its wire form, without the
// fields that come from the lease table (status, last heartbeat, expiry).
// Without withMetadata, Metadata is left nil for the caller to fill (or to
// encode from the stored pairs without building a map).
func InstanceView(inst *Instance, withMetadata bool) api.Instance {
	v := api.Instance{
		Namespace: inst.Namespace, Service: inst.Service, ID: inst.ID,
		RevisionTag: inst.RevisionTag, Address: inst.Address, Port: int(inst.Port),
		PublicURL: inst.PublicURL, Endpoints: inst.Endpoints, Tags: inst.Tags,
		HeartbeatTimeout: int(inst.HeartbeatTimeout),
		RegisteredAt:     inst.RegisteredAt,
	}
	if v.Endpoints == nil {
		v.Endpoints = []string{}
	}
	if v.Tags == nil {
		v.Tags = []string{}
	}
	if withMetadata {
		v.Metadata = inst.Metadata.WireMap()
	}
	return v
}

// PatchInstance changes the fields present in p (validated) of a live
// registration. The registration, and so its token, stays the same; a patch
// does not renew it. lastBeat and expires are the lease as the leader knew it,
// for the event (zero: unknown, taken as now and now + timeout).
func (s *Store) PatchInstance(now time.Time, k InstanceKey, p api.PatchInstanceRequest, lastBeat, expires time.Time) (*Instance, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	svc := s.services[Key{k.Namespace, k.Service}]
	if svc == nil || svc.instances[k.ID] == nil {
		return nil, registry.NotFound("instance %s", k)
	}
	old := svc.instances[k.ID]
	if p.Tags == nil && p.Metadata == nil && p.Endpoints == nil && p.PublicURL == nil && p.HeartbeatTimeout == nil {
		return old, nil // nothing to change: no event
	}
	n := *old
	if p.Tags != nil {
		n.Tags = s.intern.tagList(*p.Tags)
	}
	if p.Metadata != nil {
		n.Metadata = MetadataOf(*p.Metadata)
		s.intern.metadata(n.Metadata)
	}
	if p.Endpoints != nil {
		n.Endpoints = *p.Endpoints
	}
	if p.PublicURL != nil {
		n.PublicURL = *p.PublicURL
	}
	if p.HeartbeatTimeout != nil {
		n.HeartbeatTimeout = int32(*p.HeartbeatTimeout) // validated: 3-120
	}
	t := s.begin(now)
	defer t.commit()
	svc.instances[k.ID] = &n
	svc.sorted.Store(nil)
	if s.observer != nil {
		// Same registration, new record: the lease table keeps the token,
		// takes a new timeout from the next heartbeat on, and lets go of the
		// old record.
		s.observer.InstanceAdded(&n)
	}
	if lastBeat.IsZero() {
		lastBeat, expires = now, now.Add(time.Duration(n.HeartbeatTimeout)*time.Second)
	}
	t.emit(api.EventInstanceUpdate, k.Namespace, k.Service, now, eventInstance(&n, lastBeat, expires))
	return &n, nil
}

// DeregisterInstance ends a registration on request.
func (s *Store) DeregisterInstance(now time.Time, k InstanceKey) (*Instance, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sk := Key{k.Namespace, k.Service}
	svc := s.services[sk]
	if svc == nil || svc.instances[k.ID] == nil {
		return nil, registry.NotFound("instance %s", k)
	}
	old := svc.instances[k.ID]
	t := s.begin(now)
	defer t.commit()
	s.removeInstance(sk, svc, old)
	t.emit(api.EventInstanceRemove, k.Namespace, k.Service, now, api.InstanceRemovedPayload{ID: old.ID, RevisionTag: old.RevisionTag})
	s.backendChanged(t, sk)
	return old, nil
}

func (s *Store) removeInstance(k Key, svc *service, inst *Instance) {
	delete(svc.instances, inst.ID)
	svc.sorted.Store(nil)
	svc.countInstance(inst.RevisionTag, -1)
	if s.observer != nil {
		s.observer.InstanceRemoved(inst)
	}
	s.dropIfEmpty(k)
}

// Expiry names one registration whose deadline has passed.
type Expiry struct {
	Key      InstanceKey `json:"key"`
	RegIndex uint64      `json:"reg_index"`
	Deadline time.Time   `json:"deadline"`
}

// ExpireInstances removes each named registration that is still the live one
// for its id (a registration replaced meanwhile is left alone) and writes an
// instance.timeout event stamped with its deadline. It returns how many it removed.
func (s *Store) ExpireInstances(now time.Time, items []Expiry) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.begin(now)
	defer t.commit()
	// Room for a batch of the reaper's (thousands of one service) up front.
	t.events = make([]api.Event, 0, len(items))
	t.scratch = make([]byte, 0, len(items)*96)
	n := 0
	var touched []Key
	for _, e := range items {
		sk := Key{e.Key.Namespace, e.Key.Service}
		svc := s.services[sk]
		if svc == nil {
			continue
		}
		inst := svc.instances[e.Key.ID]
		if inst == nil || inst.RegIndex != e.RegIndex {
			continue
		}
		s.removeInstance(sk, svc, inst)
		t.emitRemoved(api.EventInstanceTimeout, sk.Namespace, sk.Name, e.Deadline, &api.InstanceRemovedPayload{ID: inst.ID, RevisionTag: inst.RevisionTag, Deadline: e.Deadline})
		if len(touched) == 0 || touched[len(touched)-1] != sk {
			touched = append(touched, sk)
		}
		n++
		// A batch of thousands takes milliseconds, more on busy cores;
		// yielding now and then lets the heartbeats waiting for a core in
		// (they need no store lock). The write lock stays held across the
		// yield, so readers (streams, lists) wait a little longer. It
		// changes nothing of the result.
		if n%256 == 0 {
			runtime.Gosched()
		}
	}
	// Readiness after the whole batch: an endpoint flips at most once per batch.
	slices.SortFunc(touched, func(a, b Key) int { return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name)) })
	for _, k := range slices.Compact(touched) {
		s.backendChanged(t, k)
	}
	return n
}

// Instance returns one live registration.
func (s *Store) Instance(k InstanceKey) (*Instance, uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	idx := s.events.last
	inst := s.instance(k)
	if inst == nil {
		return nil, idx, registry.NotFound("instance %s", k)
	}
	return inst, idx, nil
}

// FindInstance is Instance for a caller that only asks whether there is
// one: it builds no error when there is none, which is the common answer
// when a registration asks it about its new id.
func (s *Store) FindInstance(k InstanceKey) (*Instance, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	inst := s.instance(k)
	return inst, inst != nil
}

// instance returns the registration of k, or nil; s.mu must be held.
func (s *Store) instance(k InstanceKey) *Instance {
	if svc := s.services[Key{k.Namespace, k.Service}]; svc != nil {
		return svc.instances[k.ID]
	}
	return nil
}

// Instances returns the registrations of a service sorted by id, and whether
// the service exists. The slice is shared with other readers until the
// service's instances change: the caller must not modify it.
func (s *Store) Instances(k Key) ([]*Instance, uint64, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	svc := s.services[k]
	if svc == nil {
		return nil, s.events.last, false
	}
	if p := svc.sorted.Load(); p != nil {
		return *p, s.events.last, true
	}
	insts := sortedInstances(svc)
	svc.sorted.Store(&insts)
	return insts, s.events.last, true
}

// NamespaceInstances returns every registration in a namespace with the
// default revision tag of its service, sorted by service and id.
func (s *Store) NamespaceInstances(ns string) ([]NamespacedInstance, uint64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []NamespacedInstance
	for k, svc := range s.services {
		if k.Namespace != ns {
			continue
		}
		for _, inst := range svc.instances {
			out = append(out, NamespacedInstance{Instance: inst, DefaultTag: svc.defaultTag})
		}
	}
	slices.SortFunc(out, func(a, b NamespacedInstance) int {
		return cmp.Or(cmp.Compare(a.Service, b.Service), cmp.Compare(a.ID, b.ID))
	})
	return out, s.events.last
}

// NamespacedInstance is an instance with its service's default revision tag.
type NamespacedInstance struct {
	*Instance
	DefaultTag string
}

// AllInstances calls fn for every registration, in no particular order, under
// the read lock: fn must not call back into the Store.
func (s *Store) AllInstances(fn func(*Instance)) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, svc := range s.services {
		for _, inst := range svc.instances {
			fn(inst)
		}
	}
}

// instancesAnyOrder answers svc's instances: the cached sorted slice when
// there is one, else a fresh one in map order, without the cost of sorting
// under the lock. The caller must not modify it.
func instancesAnyOrder(svc *service) []*Instance {
	if p := svc.sorted.Load(); p != nil {
		return *p
	}
	out := make([]*Instance, 0, len(svc.instances))
	for _, inst := range svc.instances {
		out = append(out, inst)
	}
	return out
}

func sortedInstances(svc *service) []*Instance {
	out := make([]*Instance, 0, len(svc.instances))
	for _, inst := range svc.instances {
		out = append(out, inst)
	}
	slices.SortFunc(out, func(a, b *Instance) int { return cmp.Compare(a.ID, b.ID) })
	return out
}
