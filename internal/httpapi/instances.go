package httpapi

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"slices"
	"time"

	"github.com/muster-registry/muster/api"
	"github.com/muster-registry/muster/internal/fsm"
	"github.com/muster-registry/muster/internal/lease"
	"github.com/muster-registry/muster/internal/registry"
	"github.com/muster-registry/muster/internal/state"
)

func instanceKey(r *http.Request) (state.InstanceKey, error) {
	return newInstanceKey(r.PathValue("ns"), r.PathValue("name"), r.PathValue("id"))
}

// newInstanceKey validates the names of an instance's route.
func newInstanceKey(ns, name, id string) (state.InstanceKey, error) {
	if err := registry.ValidateService(ns, name); err != nil {
		return state.InstanceKey{}, err
	}
	return state.InstanceKey{Namespace: ns, Service: name, ID: id}, registry.ValidateInstanceID(id)
}

// view is the wire form of a stored instance with its lease: a registration
// past its deadline is critical, never passing, even before its expiry is
// committed.
func (h *Handler) view(inst *state.Instance, now time.Time) api.Instance {
	v, _ := h.lease(inst, now)
	v.Metadata = inst.Metadata.WireMap()
	return v
}

// lease is view without the metadata, which the caller adds, and the
// deadline the status was decided by (before it is truncated for the wire).
func (h *Handler) lease(inst *state.Instance, now time.Time) (api.Instance, time.Time) {
	v := state.InstanceView(inst, false)
	l, ok := h.leases.Get(inst.Key(), inst.RegIndex)
	if !ok {
		l = lease.Lease{LastBeat: inst.RegisteredAt, Deadline: inst.RegisteredAt.Add(time.Duration(inst.HeartbeatTimeout) * time.Second)}
	}
	v.LastHeartbeatAt = l.LastBeat.UTC().Truncate(time.Millisecond)
	v.ExpiresAt = l.Deadline.UTC().Truncate(time.Millisecond)
	v.Status = api.StatusCritical
	if ok && l.Passing(now) {
		v.Status = api.StatusPassing
	}
	return v, l.Deadline
}

func (h *Handler) postInstance(w http.ResponseWriter, r *http.Request) {
	k, err := serviceKey(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	buf := h.bufs.get()
	req, err := registrationBody(r, buf)
	h.bufs.put(buf)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	if req.ID == "" {
		req.ID = newInstanceID()
	}
	h.register(w, r, k, req, false)
}

func (h *Handler) putInstance(w http.ResponseWriter, r *http.Request) {
	ik, err := instanceKey(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	buf := h.bufs.get()
	req, err := registrationBody(r, buf)
	h.bufs.put(buf)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	if req.ID != "" && req.ID != ik.ID {
		h.writeError(w, r, registry.Invalid("id", "%q differs from the id in the path %q", req.ID, ik.ID))
		return
	}
	req.ID = ik.ID
	h.register(w, r, state.Key{Namespace: ik.Namespace, Name: ik.Service}, req, true)
}

// explicitTimeout refuses "heartbeat_timeout": 0: only an absent timeout
// takes the default.
func explicitTimeout(present map[string]bool, req api.RegisterInstanceRequest) error {
	if present["heartbeat_timeout"] && req.HeartbeatTimeout == 0 {
		return registry.ValidateHeartbeatTimeout(0)
	}
	return nil
}

func newInstanceID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (h *Handler) register(w http.ResponseWriter, r *http.Request, k state.Key, req api.RegisterInstanceRequest, replace bool) {
	if err := registry.ValidateRegistration(&req); err != nil {
		h.writeError(w, r, err)
		return
	}
	inst := state.Instance{
		Namespace: k.Namespace, Service: k.Name, ID: req.ID, RevisionTag: req.RevisionTag,
		Address: req.Address, Port: int32(req.Port), PublicURL: req.PublicURL, // validated: 0-65535
		Endpoints: req.Endpoints, Tags: req.Tags, Metadata: state.MetadataOf(req.Metadata),
		HeartbeatTimeout: int32(req.HeartbeatTimeout), Token: lease.NewToken(), // validated: 3-120
	}
	cmd := &fsm.RegisterInstance{Time: h.stamp(), Replace: replace, Instance: inst}
	if !replace {
		// An id whose registration is past its deadline is not live: a POST
		// takes it over, after the old registration times out.
		if old, ok := h.store.FindInstance(inst.Key()); ok {
			if l, ok := h.leases.Get(old.Key(), old.RegIndex); ok && !l.Passing(h.now()) {
				cmd.ReplaceDead = &state.Expiry{Key: old.Key(), RegIndex: old.RegIndex, Deadline: l.Deadline.UTC().Truncate(time.Millisecond)}
			}
		}
	}
	res, err := h.propose(cmd)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	out := res.Value.(fsm.InstanceResult)
	setIndex(w, h.store.Index())
	w.Header().Set("Location", "/v1/services/"+k.Namespace+"/"+k.Name+"/instances/"+out.Instance.ID)
	status := http.StatusCreated
	if out.Replaced {
		status = http.StatusOK
	}
	v, _ := h.lease(out.Instance, h.now())
	h.writeRegistration(w, status, listed{Instance: v, md: out.Instance.Metadata}, out.Instance.Token)
}

func (h *Handler) patchInstance(w http.ResponseWriter, r *http.Request) {
	ik, err := instanceKey(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	var p api.PatchInstanceRequest
	if _, err := decode(r, &p); err != nil {
		h.writeError(w, r, err)
		return
	}
	if err := registry.ValidatePatch(&p); err != nil {
		h.writeError(w, r, err)
		return
	}
	cmd := &fsm.PatchInstance{Time: h.stamp(), Key: ik, Patch: p}
	if inst, ok := h.store.FindInstance(ik); ok {
		// A patch does not renew the lease: its event shows the lease as it
		// is. A registration past its deadline is dead, as for a heartbeat.
		l, ok := h.leases.Get(ik, inst.RegIndex)
		if ok && !l.Passing(h.now()) {
			h.writeError(w, r, registry.NotFound("instance %s (past its deadline)", ik))
			return
		}
		if ok {
			cmd.LastBeat, cmd.Deadline = l.LastBeat.UTC().Truncate(time.Millisecond), l.Deadline.UTC().Truncate(time.Millisecond)
		}
	}
	res, err := h.propose(cmd)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	setIndex(w, h.store.Index())
	writeJSON(w, http.StatusOK, h.view(res.Value.(fsm.InstanceResult).Instance, h.now()))
}

func (h *Handler) deleteInstance(w http.ResponseWriter, r *http.Request) {
	ik, err := instanceKey(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	if _, err := h.propose(&fsm.DeregisterInstance{Time: h.stamp(), Key: ik}); err != nil {
		h.writeError(w, r, err)
		return
	}
	setIndex(w, h.store.Index())
	w.WriteHeader(http.StatusNoContent)
}

func (h *Handler) heartbeat(w http.ResponseWriter, r *http.Request) {
	h.beat(w, r, r.PathValue("ns"), r.PathValue("name"), r.PathValue("id"))
}

// beat answers a heartbeat of the instance named by the route's values,
// whether the mux or heartbeatRoute found them.
func (h *Handler) beat(w http.ResponseWriter, r *http.Request, ns, name, id string) {
	ik, err := newInstanceKey(ns, name, id)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	buf := h.bufs.get()
	defer h.bufs.put(buf)
	token, err := h.heartbeatBody(r, buf)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	if token == "" {
		h.writeError(w, r, registry.Invalid("token", "is required"))
		return
	}
	next, deadline, err := h.leases.Heartbeat(ik, token)
	if h.metrics != nil {
		h.metrics.heartbeat(err)
	}
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	resp := api.HeartbeatResponse{Token: next, ExpiresAt: deadline.UTC().Truncate(time.Millisecond)}
	b, ok := appendHeartbeatAnswer((*buf)[:0], resp.Token, resp.ExpiresAt)
	if !ok {
		writeJSON(w, http.StatusOK, resp) // a time encoding/json refuses: answer exactly as it would
		return
	}
	*buf = b
	w.Header()["Content-Type"] = h.jsonType
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// heartbeatBody reads the token of a heartbeat's body into buf (reused):
// by hand in the form SDKs send, else strictly decoded.
func (h *Handler) heartbeatBody(r *http.Request, buf *[]byte) (string, error) {
	body, err := readBody(r, (*buf)[:0])
	*buf = body
	if err != nil {
		return "", err
	}
	if token, ok := heartbeatToken(body); ok {
		return token, nil
	}
	var req api.HeartbeatRequest
	if _, err := decodeBody(body, &req); err != nil {
		return "", err
	}
	return req.Token, nil
}

func (h *Handler) getInstance(w http.ResponseWriter, r *http.Request) {
	ik, err := instanceKey(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	if _, err := parseQuery(r); err != nil {
		h.writeError(w, r, err)
		return
	}
	inst, idx, err := h.store.Instance(ik)
	setIndex(w, idx)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, h.view(inst, h.now()))
}

func (h *Handler) listInstances(w http.ResponseWriter, r *http.Request) {
	k, err := serviceKey(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	q, err := parseQuery(r, "tag", "revision_tag", "status", "limit", "marker")
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	limit, marker, err := q.page()
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	tags := q.all("tag")
	rev, err := q.one("revision_tag")
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	status, err := q.one("status")
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	if status != "" && status != api.StatusPassing && status != api.StatusCritical {
		h.writeError(w, r, badRequest("query parameter \"status\" must be %q or %q, not %q", api.StatusPassing, api.StatusCritical, status))
		return
	}
	insts, idx, _ := h.store.Instances(k)
	now := h.now()
	if len(tags) == 0 && rev == "" && status == "" && marker == "" && len(insts) > 0 {
		h.serveCachedList(w, k, limit, insts, idx, now)
		return
	}
	views := make([]listed, 0, len(insts))
	for _, inst := range insts {
		if rev != "" && inst.RevisionTag != rev {
			continue
		}
		if !hasAll(inst.Tags, tags) {
			continue
		}
		v, _ := h.lease(inst, now)
		if status != "" && v.Status != status {
			continue
		}
		views = append(views, listed{Instance: v, md: inst.Metadata})
	}
	page, next := paginate(views, limit, marker,
		func(v listed, m string) bool { return v.ID > m },
		func(v listed) string { return v.ID })
	setIndex(w, idx)
	h.writeInstanceList(w, http.StatusOK, list(page, limit, next))
}

// hasAll reports whether have contains every tag of want.
func hasAll(have, want []string) bool {
	for _, t := range want {
		if !slices.Contains(have, t) {
			return false
		}
	}
	return true
}
