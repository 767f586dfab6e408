package httpapi

import (
	"errors"
	"net/http"
	"net/url"

	"github.com/muster-registry/muster/api"
	"github.com/muster-registry/muster/internal/fsm"
	"github.com/muster-registry/muster/internal/registry"
	"github.com/muster-registry/muster/internal/state"
)

// serviceKey reads and validates {ns} and {name}.
func serviceKey(r *http.Request) (state.Key, error) {
	k := state.Key{Namespace: r.PathValue("ns"), Name: r.PathValue("name")}
	return k, registry.ValidateService(k.Namespace, k.Name)
}

func (h *Handler) registerRevision(w http.ResponseWriter, r *http.Request) {
	k, err := serviceKey(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	var req api.RegisterRevisionRequest
	if _, err := decode(r, &req); err != nil {
		h.writeError(w, r, err)
		return
	}
	if err := registry.ValidateRevisionTag(req.RevisionTag); err != nil {
		h.writeError(w, r, err)
		return
	}
	if err := registry.ValidateMetadata("metadata", req.Metadata); err != nil {
		h.writeError(w, r, err)
		return
	}
	isDefault, err := h.isDefaultHook(k, req)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	res, err := h.propose(&fsm.RegisterRevision{Time: h.stamp(), Namespace: k.Namespace, Name: k.Name, Tag: req.RevisionTag, IsDefault: isDefault, Metadata: req.Metadata})
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	out := res.Value.(fsm.RevisionResult)
	setIndex(w, h.store.Index())
	status := http.StatusOK
	if out.Created {
		status = http.StatusCreated
		w.Header().Set("Location", "/v1/services/"+k.Namespace+"/"+k.Name+"?revision_tag="+url.QueryEscape(out.Revision.RevisionTag))
	}
	writeJSON(w, status, out.Revision)
}

func (h *Handler) listRevisions(w http.ResponseWriter, r *http.Request) {
	k, err := serviceKey(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	q, err := parseQuery(r, "limit", "marker")
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	limit, marker, err := q.page()
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	revs, idx, err := h.store.Revisions(k)
	if err != nil && !errors.Is(err, registry.ErrNotFound) {
		h.writeError(w, r, err)
		return
	}
	page, next := paginate(revs, limit, marker,
		func(rv api.Revision, m string) bool { return registry.CompareTags(rv.RevisionTag, m) > 0 },
		func(rv api.Revision) string { return rv.RevisionTag })
	setIndex(w, idx)
	writeJSON(w, http.StatusOK, list(page, limit, next))
}

func (h *Handler) deleteRevision(w http.ResponseWriter, r *http.Request) {
	k, err := serviceKey(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	tag := r.PathValue("tag")
	if err := registry.ValidateRevisionTag(tag); err != nil {
		h.writeError(w, r, err)
		return
	}
	if _, err := h.propose(&fsm.DeleteRevision{Time: h.stamp(), Namespace: k.Namespace, Name: k.Name, Tag: tag}); err != nil {
		h.writeError(w, r, err)
		return
	}
	setIndex(w, h.store.Index())
	w.WriteHeader(http.StatusNoContent)
}
