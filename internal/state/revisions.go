package state

import (
	"maps"
	"slices"
	"time"

	"github.com/muster-registry/muster/api"
	"github.com/muster-registry/muster/internal/registry"
)

// RegisterRevision stores a revision, or finds the one with that tag, and
// decides the default: an explicit isDefault wins (false is remembered: the
// rule never picks that revision by itself); without one, a new revision
// becomes the default when the service's default rule says so, and re-posting
// an existing tag changes nothing. A revision's metadata is fixed when it is
// registered: re-posting with other metadata is a conflict (md nil means none
// given). It reports whether the revision was new. Inputs must be validated.
func (s *Store) RegisterRevision(now time.Time, k Key, tag string, isDefault *bool, md map[string]string) (api.Revision, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var rev *Revision
	if svc := s.services[k]; svc != nil {
		rev = svc.revisions[tag]
	}
	existed := rev != nil
	if existed && md != nil && !maps.Equal(md, rev.Metadata) && (len(md) > 0 || len(rev.Metadata) > 0) {
		return api.Revision{}, false, registry.Conflict("revision %s:%s is already registered with other metadata; a revision's metadata is fixed when it is registered", k, tag)
	}
	t := s.begin(now)
	defer t.commit()

	svc := s.serviceFor(k)
	switch {
	case !existed:
		rev = &Revision{Tag: tag, CreatedAt: now, Metadata: md, NotDefault: isDefault != nil && !*isDefault}
	case isDefault != nil && rev.NotDefault != !*isDefault:
		n := *rev
		n.NotDefault = !*isDefault
		rev = &n
	}
	svc.revisions[tag] = rev

	next := svc.defaultTag
	switch {
	case isDefault != nil && *isDefault:
		next = tag
	case isDefault != nil:
		if svc.defaultTag == tag {
			next = svc.ruleChoice() // tag is no longer eligible
		}
	case !existed:
		others := slices.DeleteFunc(svc.eligible(), func(o string) bool { return o == tag })
		if registry.BecomesDefaultByRule(svc.rule(), tag, others, nil) {
			next = tag
		}
	}
	if !existed {
		view := revisionView(k, svc, rev)
		view.IsDefault = next == tag
		t.emit(api.EventRevisionRegister, k.Namespace, k.Name, now, view)
	}
	t.setDefault(k, svc, next)
	return revisionView(k, svc, rev), !existed, nil
}

func (t *txn) setDefault(k Key, svc *service, tag string) {
	prev := svc.defaultTag
	svc.defaultTag = tag
	if prev == tag {
		return
	}
	t.emit(api.EventRevisionDefault, k.Namespace, k.Name, t.now, api.RevisionDefaultPayload{RevisionTag: tag, Previous: prev})
}

// DeleteRevision removes a revision. A removed default is replaced by the
// default rule's choice among the remaining revisions, or by none. A revision
// that the service's policy names is not removed: change the policy first.
func (s *Store) DeleteRevision(now time.Time, k Key, tag string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	svc := s.services[k]
	if svc == nil {
		return notFoundService(k)
	}
	rev, ok := svc.revisions[tag]
	if !ok {
		return registry.NotFound("revision %s:%s", k, tag)
	}
	if routes := registry.PolicyReferences(svc.policy, tag); len(routes) > 0 {
		return registry.Conflict("revision %s:%s is named by the policy's route %q; change the policy first", k, tag, routes[0])
	}
	t := s.begin(now)
	defer t.commit()
	view := revisionView(k, svc, rev)
	delete(svc.revisions, tag)
	t.emit(api.EventRevisionRemove, k.Namespace, k.Name, now, view)
	if svc.defaultTag == tag {
		// Gone: the rule chooses afresh (manual chooses none).
		svc.defaultTag = ""
		svc.defaultTag = svc.ruleChoice()
		t.emit(api.EventRevisionDefault, k.Namespace, k.Name, now, api.RevisionDefaultPayload{RevisionTag: svc.defaultTag, Previous: tag})
	}
	s.dropIfEmpty(k)
	return nil
}

// Revision returns the revision with tag, or the default when tag is empty.
func (s *Store) Revision(k Key, tag string) (api.Revision, uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	idx := s.events.last
	svc := s.services[k]
	if svc == nil {
		return api.Revision{}, idx, notFoundService(k)
	}
	if tag == "" {
		if svc.defaultTag == "" {
			return api.Revision{}, idx, registry.NotFound("default revision of %s", k)
		}
		tag = svc.defaultTag
	}
	rev, ok := svc.revisions[tag]
	if !ok {
		return api.Revision{}, idx, registry.NotFound("revision %s:%s", k, tag)
	}
	return revisionView(k, svc, rev), idx, nil
}

// Revisions returns the revisions of a service, newest semantic version first
// (registry.CompareTags), or ErrNotFound when the service has none.
func (s *Store) Revisions(k Key) ([]api.Revision, uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	idx := s.events.last
	svc := s.services[k]
	if svc == nil {
		return nil, idx, notFoundService(k)
	}
	return sortedRevisions(k, svc), idx, nil
}

func sortedRevisions(k Key, svc *service) []api.Revision {
	out := make([]api.Revision, 0, len(svc.revisions))
	for _, r := range svc.revisions {
		out = append(out, revisionView(k, svc, r))
	}
	slices.SortFunc(out, func(a, b api.Revision) int { return registry.CompareTags(a.RevisionTag, b.RevisionTag) })
	return out
}
