package state

import (
	"reflect"
	"time"

	"github.com/muster-registry/muster/api"
	"github.com/muster-registry/muster/internal/registry"
)

// SetPolicy stores a service's selection policy, validated against the
// service's revisions here, in log order, so a revision deleted meanwhile
// cannot slip in. p must be normalised (DefaultRule set) and is kept as is.
// A change of default rule re-evaluates the default.
func (s *Store) SetPolicy(now time.Time, k Key, p *api.Policy) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var tags []string
	if svc := s.services[k]; svc != nil {
		tags = svc.tags()
	}
	if err := registry.ValidatePolicy(p, tags); err != nil {
		return err
	}
	if svc := s.services[k]; svc != nil && svc.policy != nil && reflect.DeepEqual(svc.policy, p) {
		return nil // the same policy again: nothing changes, nothing is said
	}
	t := s.begin(now)
	defer t.commit()
	svc := s.serviceFor(k)
	oldRule := svc.rule()
	svc.policy = p
	t.emit(api.EventServiceUpdate, k.Namespace, k.Name, now, api.ServiceUpdatePayload{Change: "policy", Policy: p})
	if svc.rule() != oldRule {
		t.setDefault(k, svc, svc.ruleChoice())
	}
	return nil
}

// DeletePolicy returns a service to the default policy (latest_semver, no
// routes). It reports whether there was a policy to delete.
func (s *Store) DeletePolicy(now time.Time, k Key) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	svc := s.services[k]
	if svc == nil || svc.policy == nil {
		return false
	}
	t := s.begin(now)
	defer t.commit()
	oldRule := svc.rule()
	svc.policy = nil
	t.emit(api.EventServiceUpdate, k.Namespace, k.Name, now, api.ServiceUpdatePayload{Change: "policy"})
	if svc.rule() != oldRule {
		t.setDefault(k, svc, svc.ruleChoice())
	}
	s.dropIfEmpty(k)
	return true
}

// Policy returns a service's policy, or nil when it has the default one.
func (s *Store) Policy(k Key) (*api.Policy, uint64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if svc := s.services[k]; svc != nil {
		return svc.policy, s.events.last
	}
	return nil, s.events.last
}

// Selection is what revision selection needs to know of a service.
type Selection struct {
	// Revisions are the service's revisions, newest semver first.
	Revisions []api.Revision
	// Default is the default revision's tag ("" when none).
	Default string
	// Policy is the service's policy (nil: the default one).
	Policy *api.Policy
}

// Tags returns the revision tags of the selection.
func (sel *Selection) Tags() []string {
	out := make([]string, len(sel.Revisions))
	for i, r := range sel.Revisions {
		out[i] = r.RevisionTag
	}
	return out
}

// Revision returns the revision with tag.
func (sel *Selection) Revision(tag string) (api.Revision, bool) {
	for _, r := range sel.Revisions {
		if r.RevisionTag == tag {
			return r, true
		}
	}
	return api.Revision{}, false
}

// Selection returns the service's revisions, default and policy.
func (s *Store) Selection(k Key) (Selection, uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	svc := s.services[k]
	if svc == nil || len(svc.revisions) == 0 {
		return Selection{}, s.events.last, registry.NotFound("revisions of service %s", k)
	}
	return Selection{Revisions: sortedRevisions(k, svc), Default: svc.defaultTag, Policy: svc.policy}, s.events.last, nil
}
