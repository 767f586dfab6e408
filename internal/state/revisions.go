package state

import (
	"slices"
	"time"

	"github.com/muster-registry/muster/api"
	"github.com/muster-registry/muster/internal/registry"
)

// RegisterRevision stores a revision, or finds the one with that tag, and
// applies the default rule (registry.BecomesDefault) or the explicit
// isDefault. It reports whether the revision was new. Metadata of an existing
// revision is replaced when md is not nil. Inputs must be validated.
func (s *Store) RegisterRevision(now time.Time, k Key, tag string, isDefault *bool, md map[string]string) (api.Revision, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.begin(now)
	defer t.commit()

	svc := s.serviceFor(k)
	rev, existed := svc.revisions[tag]
	if !existed {
		rev = &Revision{Tag: tag, CreatedAt: now, Metadata: md}
	} else if md != nil {
		rev = &Revision{Tag: tag, CreatedAt: rev.CreatedAt, Metadata: md}
	}
	svc.revisions[tag] = rev

	// An existing revision only moves the default when told to explicitly:
	// re-posting a tag is idempotent.
	next := svc.defaultTag
	if !existed || isDefault != nil {
		becomes := registry.BecomesDefault(tag, svc.tags(), isDefault)
		switch {
		case becomes:
			next = tag
		case isDefault != nil && svc.defaultTag == tag:
			// is_default:false on the current default: hand it to the rule's choice among the others.
			next = greatestExcept(svc, tag)
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

// greatestExcept returns the greatest semver tag of svc other than except, or "".
func greatestExcept(svc *service, except string) string {
	tags := svc.tags()
	tags = slices.DeleteFunc(tags, func(t string) bool { return t == except })
	best, _ := registry.GreatestVersion(tags)
	return best
}

// DeleteRevision removes a revision. A removed default is replaced by the
// greatest remaining semantic version, or by none.
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
	t := s.begin(now)
	defer t.commit()
	view := revisionView(k, svc, rev)
	delete(svc.revisions, tag)
	t.emit(api.EventRevisionRemove, k.Namespace, k.Name, now, view)
	if svc.defaultTag == tag {
		next, _ := registry.GreatestVersion(svc.tags())
		t.setDefault(k, svc, next)
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
	out := make([]api.Revision, 0, len(svc.revisions))
	for _, r := range svc.revisions {
		out = append(out, revisionView(k, svc, r))
	}
	slices.SortFunc(out, func(a, b api.Revision) int { return registry.CompareTags(a.RevisionTag, b.RevisionTag) })
	return out, idx, nil
}
