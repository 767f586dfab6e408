package httpapi

import (
	"errors"
	"math/rand/v2"
	"net/http"
	"strings"

	"github.com/muster-registry/muster/api"
	"github.com/muster-registry/muster/internal/fsm"
	"github.com/muster-registry/muster/internal/registry"
	"github.com/muster-registry/muster/internal/state"
)

func (h *Handler) getPolicy(w http.ResponseWriter, r *http.Request) {
	k, err := serviceKey(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	if _, err := parseQuery(r); err != nil {
		h.writeError(w, r, err)
		return
	}
	p, idx := h.store.Policy(k)
	setIndex(w, idx)
	writeJSON(w, http.StatusOK, effectivePolicy(p))
}

// effectivePolicy is the policy a service follows: its own, or the default
// one, with every field spelled out.
func effectivePolicy(p *api.Policy) api.Policy {
	out := api.Policy{DefaultRule: api.RuleLatestSemver, Routes: []api.PolicyRoute{}}
	if p != nil {
		out = *p
	}
	return out
}

func (h *Handler) putPolicy(w http.ResponseWriter, r *http.Request) {
	k, err := serviceKey(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	var p api.Policy
	if _, err := decode(r, &p); err != nil {
		h.writeError(w, r, err)
		return
	}
	if p.DefaultRule == "" {
		p.DefaultRule = api.RuleLatestSemver
	}
	if p.Routes == nil {
		p.Routes = []api.PolicyRoute{}
	}
	// Validated against the revisions by the state machine, in log order.
	if _, err := h.propose(&fsm.SetPolicy{Time: h.stamp(), Namespace: k.Namespace, Name: k.Name, Policy: p}); err != nil {
		h.writeError(w, r, err)
		return
	}
	setIndex(w, h.store.Index())
	writeJSON(w, http.StatusOK, p)
}

func (h *Handler) deletePolicy(w http.ResponseWriter, r *http.Request) {
	k, err := serviceKey(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	if _, err := h.propose(&fsm.DeletePolicy{Time: h.stamp(), Namespace: k.Namespace, Name: k.Name}); err != nil {
		h.writeError(w, r, err)
		return
	}
	setIndex(w, h.store.Index())
	w.WriteHeader(http.StatusNoContent)
}

// choice is a revision chosen for a requester, and how.
type choice struct {
	rev      api.Revision
	route    string
	fallback bool
	passing  []api.Instance // the passing instances of rev
}

// selectionParams are the query parameters of the selecting routes.
var selectionParams = []string{"revision_tag", "revision", "requester", "label."}

// choose picks the revision a request asks for: an exact revision_tag, the
// highest revision satisfying a ?revision= constraint, or else the
// embedding program's hook, then the service's policy, then the default;
// with fallback_to_default, a pick without passing instances falls back to
// the default.
func (h *Handler) choose(r *http.Request, k state.Key, q query) (choice, uint64, error) {
	tag, err := q.one("revision_tag")
	if err != nil {
		return choice{}, 0, err
	}
	constraint, err := q.one("revision")
	if err != nil {
		return choice{}, 0, err
	}
	requester, err := q.one("requester")
	if err != nil {
		return choice{}, 0, err
	}
	if requester == "" {
		requester = r.Header.Get(api.HeaderRequester)
	}
	if tag != "" && constraint != "" {
		return choice{}, 0, badRequest("give revision_tag or revision, not both")
	}
	if tag != "" {
		if err := registry.ValidateRevisionTag(tag); err != nil {
			return choice{}, 0, err
		}
	}
	sel, idx, err := h.store.Selection(k)
	if err != nil {
		if tag != "" {
			err = registry.NotFound("revision %s:%s", k, tag)
		}
		return choice{}, idx, err
	}
	c := choice{}
	switch {
	case tag != "":
		c.rev.RevisionTag = tag
	case constraint != "":
		if !registry.ValidConstraint(constraint) {
			return choice{}, idx, badRequest("query parameter \"revision\" %q is not a semver constraint (e.g. ^1.2, ~1.3.0, >=2.0.0-0)", constraint)
		}
		c.rev.RevisionTag = registry.HighestSatisfying(constraint, sel.Tags())
		if c.rev.RevisionTag == "" {
			return choice{}, idx, registry.NotFound("revision of %s satisfying %q", k, constraint)
		}
	default:
		lbls, err := labels(q)
		if err != nil {
			return choice{}, idx, err
		}
		req := api.SelectionRequest{Requester: requester, Headers: r.Header, Labels: lbls}
		picked := ""
		if h.selectHook != nil {
			if t, ok := h.selectHook(k.Namespace, k.Name, sel.Revisions, req); ok && t != "" {
				if _, known := sel.Revision(t); known {
					picked, c.route = t, api.RouteHook
				} else {
					h.log.Warn("selection hook picked a revision the service does not have; using the policy", "service", k.String(), "revision", t)
				}
			}
		}
		if picked == "" {
			s := registry.Select(sel.Policy, sel.Tags(), sel.Default, registry.Request{Requester: req.Requester, Headers: r.Header, Labels: req.Labels},
				func(n uint64) uint64 { return rand.Uint64N(n) })
			picked, c.route = s.Tag, s.Route
		}
		c.rev.RevisionTag = picked
	}
	if c.rev.RevisionTag == "" {
		return choice{}, idx, registry.NotFound("default revision of %s", k)
	}
	c.passing = h.passingOf(k, c.rev.RevisionTag)
	if c.route != "" && sel.Policy != nil && sel.Policy.FallbackToDefault && len(c.passing) == 0 &&
		sel.Default != "" && c.rev.RevisionTag != sel.Default {
		c.rev.RevisionTag, c.fallback = sel.Default, true
		c.passing = h.passingOf(k, sel.Default)
	}
	rev, ok := sel.Revision(c.rev.RevisionTag)
	if !ok {
		return choice{}, idx, registry.NotFound("revision %s:%s", k, c.rev.RevisionTag)
	}
	c.rev = rev
	return c, idx, nil
}

func labels(q query) (map[string]string, error) {
	var out map[string]string
	for k, vs := range q.v {
		if name, ok := strings.CutPrefix(k, "label."); ok {
			if len(vs) != 1 {
				return nil, badRequest("query parameter %q is given %d times; give it once", k, len(vs))
			}
			if out == nil {
				out = map[string]string{}
			}
			out[name] = vs[0]
		}
	}
	return out, nil
}

// passingOf returns the passing instances of one revision of a service.
func (h *Handler) passingOf(k state.Key, tag string) []api.Instance {
	insts, _, _ := h.store.Instances(k)
	now := h.now()
	out := []api.Instance{}
	for _, inst := range insts {
		if inst.RevisionTag != tag {
			continue
		}
		if v := h.view(inst, now); v.Status == api.StatusPassing {
			out = append(out, v)
		}
	}
	return out
}

// selection runs the shared part of the selecting routes: parse, choose,
// set the index; it writes the error and reports false when there is one.
func (h *Handler) selection(w http.ResponseWriter, r *http.Request) (state.Key, choice, bool) {
	k, err := serviceKey(r)
	if err != nil {
		h.writeError(w, r, err)
		return k, choice{}, false
	}
	q, err := parseQuery(r, selectionParams...)
	if err != nil {
		h.writeError(w, r, err)
		return k, choice{}, false
	}
	c, idx, err := h.choose(r, k, q)
	if idx == 0 {
		idx = h.store.Index() // refused before the state was read
	}
	setIndex(w, idx)
	if err != nil {
		h.writeError(w, r, err)
		return k, choice{}, false
	}
	return k, c, true
}

func (h *Handler) getRevision(w http.ResponseWriter, r *http.Request) {
	_, c, ok := h.selection(w, r)
	if !ok {
		return
	}
	if c.route != "" {
		w.Header().Set(api.HeaderRoute, c.route)
	}
	if c.fallback {
		w.Header().Set(api.HeaderFallback, "true")
	}
	writeJSON(w, http.StatusOK, c.rev)
}

func (h *Handler) resolve(w http.ResponseWriter, r *http.Request) {
	k, c, ok := h.selection(w, r)
	if !ok {
		return
	}
	urls, _, _ := h.buildURLMap(k.Namespace)
	writeJSON(w, http.StatusOK, api.Resolution{Revision: c.rev, Route: c.route, Fallback: c.fallback, Instances: c.passing, URLMap: urls})
}

// isDefaultHook asks the embedding program's hook, if any, whether a new
// revision becomes the default.
func (h *Handler) isDefaultHook(k state.Key, req api.RegisterRevisionRequest) (*bool, error) {
	if h.defaultHook == nil || req.IsDefault != nil {
		return req.IsDefault, nil
	}
	existing, _, err := h.store.Revisions(k)
	if err != nil && !errors.Is(err, registry.ErrNotFound) {
		return nil, err
	}
	for _, r := range existing {
		if r.RevisionTag == req.RevisionTag {
			return nil, nil // a re-post without is_default never moves the default
		}
	}
	if v, ok := h.defaultHook(k.Namespace, k.Name, req, existing); ok {
		return &v, nil
	}
	return nil, nil
}
