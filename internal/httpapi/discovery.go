package httpapi

import (
	"cmp"
	"net/http"
	"slices"
	"strings"

	"github.com/muster-registry/muster/api"
	"github.com/muster-registry/muster/internal/registry"
)

func (h *Handler) listServices(w http.ResponseWriter, r *http.Request) {
	q, err := parseQuery(r, "namespace", "tag", "limit", "marker")
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	ns, err := q.one("namespace")
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	if ns != "" {
		if err := registry.ValidateNamespace(ns); err != nil {
			h.writeError(w, r, err)
			return
		}
	}
	limit, marker, err := q.page()
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	tags := q.all("tag")
	sums, idx := h.store.Services(ns)
	now := h.now()
	out := make([]api.ServiceSummary, 0, len(sums))
	for _, s := range sums {
		sum := api.ServiceSummary{Namespace: s.Namespace, Name: s.Name, DefaultRevision: s.Default, Revisions: s.Revisions, Instances: len(s.Instances), Tags: []string{}}
		matched := len(tags) == 0
		for _, inst := range s.Instances {
			if l, ok := h.leases.Get(inst.Key(), inst.RegIndex); ok && l.Passing(now) {
				sum.Passing++
			}
			if !matched && hasAll(inst.Tags, tags) {
				matched = true
			}
			for _, t := range inst.Tags {
				if !slices.Contains(sum.Tags, t) {
					sum.Tags = append(sum.Tags, t)
				}
			}
		}
		if !matched {
			continue
		}
		slices.Sort(sum.Tags)
		out = append(out, sum)
	}
	page, next := paginate(out, limit, marker,
		func(s api.ServiceSummary, m string) bool {
			// Compare as the list is sorted: by namespace, then name (not as one string).
			ns, name, _ := strings.Cut(m, "/")
			return cmp.Or(cmp.Compare(s.Namespace, ns), cmp.Compare(s.Name, name)) > 0
		},
		func(s api.ServiceSummary) string { return s.Namespace + "/" + s.Name })
	setIndex(w, idx)
	writeJSON(w, http.StatusOK, list(page, limit, next))
}

func (h *Handler) urlMap(w http.ResponseWriter, r *http.Request) {
	ns := r.PathValue("ns")
	if err := registry.ValidateNamespace(ns); err != nil {
		h.writeError(w, r, err)
		return
	}
	if _, err := parseQuery(r); err != nil {
		h.writeError(w, r, err)
		return
	}
	m, conflicts, idx := h.buildURLMap(ns)
	setIndex(w, idx)
	writeJSON(w, http.StatusOK, api.URLMap{URLMap: m, Conflicts: conflicts})
}

// buildURLMap builds a namespace's URL map from its passing instances.
func (h *Handler) buildURLMap(ns string) (map[string]string, []api.URLMapConflict, uint64) {
	insts, idx := h.store.NamespaceInstances(ns)
	now := h.now()
	var claims []registry.URLClaim
	for _, inst := range insts {
		if inst.PublicURL == "" || len(inst.Endpoints) == 0 {
			continue
		}
		if l, ok := h.leases.Get(inst.Key(), inst.RegIndex); !ok || !l.Passing(now) {
			continue
		}
		for _, ep := range inst.Endpoints {
			claims = append(claims, registry.URLClaim{
				Resource: ep, PublicURL: inst.PublicURL, Instance: inst.Key().String(),
				DefaultRevision: inst.DefaultTag != "" && inst.RevisionTag == inst.DefaultTag,
				RegisteredAt:    inst.RegisteredAt,
			})
		}
	}
	m, conflicts := registry.BuildURLMap(claims)
	return m, conflicts, idx
}

func (h *Handler) health(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, api.Health{Status: "ok"})
}

func (h *Handler) getStatus(w http.ResponseWriter, r *http.Request) {
	if _, err := parseQuery(r); err != nil {
		h.writeError(w, r, err)
		return
	}
	var st api.Status
	if h.status != nil {
		st = h.status()
	}
	st.Namespaces, st.Services, st.Revisions, st.Instances = h.store.Counts()
	st.EventIndex = h.store.Index()
	st.OldestEvent = h.store.OldestEvent()
	setIndex(w, st.EventIndex)
	writeJSON(w, http.StatusOK, st)
}
