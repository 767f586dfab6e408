package client

import (
	"cmp"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/muster-registry/muster/api"
	"github.com/muster-registry/muster/internal/registry"
)

// fakeService is what the fake knows of a service beyond its instances: its
// revisions, its default and its policy.
type fakeService struct {
	revs   []api.Revision // in registration order
	def    string
	policy *api.Policy
}

func (s *fakeService) tags() []string {
	out := make([]string, len(s.revs))
	for i, r := range s.revs {
		out[i] = r.RevisionTag
	}
	return out
}

// addPolicyRoutes adds the revision, policy and resolve routes. Selection
// uses the server's own rules (internal/registry) and f.rnd for splits
// that are not sticky; the embedding hook is not modelled.
func (f *fakeMuster) addPolicyRoutes() {
	f.services = map[string]*fakeService{}
	f.rnd = func(uint64) uint64 { return 0 }
	f.mux.HandleFunc("POST /v1/services/{ns}/{name}", f.registerRevision)
	f.mux.HandleFunc("GET /v1/services/{ns}/{name}", f.getRevision)
	f.mux.HandleFunc("GET /v1/services/{ns}/{name}/policy", f.getPolicy)
	f.mux.HandleFunc("PUT /v1/services/{ns}/{name}/policy", f.putPolicy)
	f.mux.HandleFunc("DELETE /v1/services/{ns}/{name}/policy", f.deletePolicy)
	f.mux.HandleFunc("GET /v1/resolve/{ns}/{name}", f.resolve)
}

func serviceOf(r *http.Request) string { return r.PathValue("ns") + "/" + r.PathValue("name") }

func (f *fakeMuster) setIndexLocked(w http.ResponseWriter) {
	w.Header().Set(api.HeaderIndex, strconv.FormatUint(f.lastEvent, 10))
}

func (f *fakeMuster) registerRevision(w http.ResponseWriter, r *http.Request) {
	var req api.RegisterRevisionRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.RevisionTag == "" {
		writeError(w, http.StatusBadRequest, api.ErrInvalidJSON, "Bad revision.")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	ns, name := r.PathValue("ns"), r.PathValue("name")
	s := f.services[serviceOf(r)]
	if s == nil {
		s = &fakeService{}
		f.services[serviceOf(r)] = s
	}
	rev := api.Revision{Namespace: ns, Name: name, RevisionTag: req.RevisionTag, Metadata: req.Metadata}
	if !slices.Contains(s.tags(), req.RevisionTag) {
		becomes := registry.BecomesDefault(req.RevisionTag, s.tags(), req.IsDefault)
		s.revs = append(s.revs, rev)
		f.emitLocked(api.EventRevisionRegister, ns, name, rev)
		if becomes {
			f.emitLocked(api.EventRevisionDefault, ns, name, api.RevisionDefaultPayload{RevisionTag: req.RevisionTag, Previous: s.def})
			s.def = req.RevisionTag
		}
	}
	rev.IsDefault = s.def == rev.RevisionTag
	writeJSON(w, http.StatusCreated, rev)
}

func (f *fakeMuster) getPolicy(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := api.Policy{DefaultRule: api.RuleLatestSemver, Routes: []api.PolicyRoute{}}
	if s := f.services[serviceOf(r)]; s != nil && s.policy != nil {
		p = *s.policy
	}
	f.setIndexLocked(w)
	writeJSON(w, http.StatusOK, p)
}

func (f *fakeMuster) putPolicy(w http.ResponseWriter, r *http.Request) {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	var p api.Policy
	if err := dec.Decode(&p); err != nil {
		writeError(w, http.StatusBadRequest, api.ErrInvalidJSON, err.Error())
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.services[serviceOf(r)]
	var tags []string
	if s != nil {
		tags = s.tags()
	}
	if err := registry.ValidatePolicy(&p, tags); err != nil {
		writeError(w, http.StatusBadRequest, api.ErrValidationFailed, err.Error())
		return
	}
	if s == nil {
		s = &fakeService{}
		f.services[serviceOf(r)] = s
	}
	p.DefaultRule = cmp.Or(p.DefaultRule, api.RuleLatestSemver)
	if p.Routes == nil {
		p.Routes = []api.PolicyRoute{}
	}
	s.policy = &p
	f.emitLocked(api.EventServiceUpdate, r.PathValue("ns"), r.PathValue("name"), api.ServiceUpdatePayload{Change: "policy", Policy: &p})
	f.setIndexLocked(w)
	writeJSON(w, http.StatusOK, p)
}

func (f *fakeMuster) deletePolicy(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s := f.services[serviceOf(r)]; s != nil && s.policy != nil {
		s.policy = nil
		f.emitLocked(api.EventServiceUpdate, r.PathValue("ns"), r.PathValue("name"), api.ServiceUpdatePayload{Change: "policy"})
	}
	w.WriteHeader(http.StatusNoContent)
}

// chooseLocked is the server's choice for a request: a tag, a constraint,
// the policy's routes or the default, with fallback_to_default.
func (f *fakeMuster) chooseLocked(r *http.Request) (api.Resolution, bool) {
	q := r.URL.Query()
	s := f.services[serviceOf(r)]
	if s == nil || len(s.revs) == 0 {
		return api.Resolution{}, false
	}
	var res api.Resolution
	tag := q.Get("revision_tag")
	switch {
	case tag != "":
	case q.Get("revision") != "":
		tag = registry.HighestSatisfying(q.Get("revision"), s.tags())
	default:
		requester := cmp.Or(q.Get("requester"), r.Header.Get(api.HeaderRequester))
		labels := map[string]string{}
		for k := range q {
			if l, ok := strings.CutPrefix(k, "label."); ok {
				labels[l] = q.Get(k)
			}
		}
		sel := registry.Select(s.policy, s.tags(), s.def, registry.Request{Requester: requester, Headers: r.Header, Labels: labels}, f.rnd)
		tag, res.Route = sel.Tag, sel.Route
	}
	res.Instances = f.passingLocked(r.PathValue("ns"), r.PathValue("name"), tag)
	if res.Route != "" && s.policy.FallbackToDefault && len(res.Instances) == 0 && tag != s.def {
		tag, res.Fallback = s.def, true
		res.Instances = f.passingLocked(r.PathValue("ns"), r.PathValue("name"), tag)
	}
	i := slices.IndexFunc(s.revs, func(rev api.Revision) bool { return rev.RevisionTag == tag })
	if i < 0 {
		return api.Resolution{}, false
	}
	res.Revision = s.revs[i]
	res.Revision.IsDefault = tag == s.def
	res.URLMap = f.urlMapLocked(r.PathValue("ns"))
	return res, true
}

func (f *fakeMuster) passingLocked(ns, svc, tag string) []api.Instance {
	out := []api.Instance{}
	for _, fi := range f.instances {
		if in := fi.inst; in.Namespace == ns && in.Service == svc && in.RevisionTag == tag {
			out = append(out, in)
		}
	}
	slices.SortFunc(out, func(a, b api.Instance) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// urlMapLocked maps each endpoint of the namespace's instances to the
// public URL of the instance with the smallest id (no conflict rules).
func (f *fakeMuster) urlMapLocked(ns string) map[string]string {
	m := map[string]string{}
	var ids []string
	for id, fi := range f.instances {
		if fi.inst.Namespace == ns && fi.inst.PublicURL != "" {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		for _, ep := range f.instances[id].inst.Endpoints {
			if _, ok := m[ep]; !ok {
				m[ep] = f.instances[id].inst.PublicURL
			}
		}
	}
	return m
}

func (f *fakeMuster) getRevision(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	res, ok := f.chooseLocked(r)
	f.setIndexLocked(w)
	if !ok {
		writeError(w, http.StatusNotFound, api.ErrNotFound, "Revision not found.")
		return
	}
	if res.Route != "" {
		w.Header().Set(headerRoute, res.Route)
	}
	if res.Fallback {
		w.Header().Set(headerFallback, "true")
	}
	writeJSON(w, http.StatusOK, res.Revision)
}

func (f *fakeMuster) resolve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	res, ok := f.chooseLocked(r)
	f.setIndexLocked(w)
	if !ok {
		writeError(w, http.StatusNotFound, api.ErrNotFound, "Revision not found.")
		return
	}
	writeJSON(w, http.StatusOK, res)
}
