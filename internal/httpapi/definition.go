package httpapi

import (
	"net/http"

	"github.com/muster-registry/muster/api"
	"github.com/muster-registry/muster/internal/fsm"
	"github.com/muster-registry/muster/internal/registry"
)

func (h *Handler) putDefinition(w http.ResponseWriter, r *http.Request) {
	k, err := serviceKey(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	var def api.Definition
	if _, err := decode(r, &def); err != nil {
		h.writeError(w, r, err)
		return
	}
	if def.Endpoints == nil {
		def.Endpoints = []api.Endpoint{}
	}
	// Checked here for a quick answer; the state machine checks again.
	if err := registry.ValidateDefinition(&def); err != nil {
		h.writeError(w, r, err)
		return
	}
	res, err := h.propose(&fsm.SetDefinition{Time: h.stamp(), Namespace: k.Namespace, Name: k.Name, Definition: def})
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	setIndex(w, h.store.Index())
	writeJSON(w, http.StatusOK, res.Value.(api.DefinitionDiff))
}

func (h *Handler) getDefinition(w http.ResponseWriter, r *http.Request) {
	k, err := serviceKey(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	if _, err := parseQuery(r); err != nil {
		h.writeError(w, r, err)
		return
	}
	def, idx := h.store.Definition(k)
	setIndex(w, idx)
	if def == nil {
		h.writeError(w, r, registry.NotFound("definition of %s", k))
		return
	}
	writeJSON(w, http.StatusOK, def)
}

func (h *Handler) readiness(w http.ResponseWriter, r *http.Request) {
	k, err := serviceKey(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	if _, err := parseQuery(r); err != nil {
		h.writeError(w, r, err)
		return
	}
	rd, idx, err := h.store.Readiness(k)
	setIndex(w, idx)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rd)
}

func (h *Handler) graph(w http.ResponseWriter, r *http.Request) {
	q, err := parseQuery(r, "namespace")
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
	defs, names, idx := h.store.Definitions(ns)
	setIndex(w, idx)
	writeJSON(w, http.StatusOK, registry.BuildGraph(defs, names))
}

func (h *Handler) dependents(w http.ResponseWriter, r *http.Request) {
	k, err := serviceKey(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	if _, err := parseQuery(r); err != nil {
		h.writeError(w, r, err)
		return
	}
	defs, _, idx := h.store.Definitions("")
	direct, all := registry.Dependents(defs, k.String())
	setIndex(w, idx)
	writeJSON(w, http.StatusOK, api.Dependents{Service: k.String(), Direct: direct, Transitive: all})
}
