package client

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/muster-registry/muster/api"
)

// handlerTransport is an http.RoundTripper that calls a handler in memory,
// on the caller's goroutine. Unlike a real connection it keeps every wait
// inside a synctest bubble "durable", so fake time can advance past it.
type handlerTransport struct {
	h http.Handler
	// refuse, when set and non-nil for a request, fails it before the
	// handler runs, as a refused connection does.
	refuse func(*http.Request) error
	// lose, when set and true for a request, drops the answer after the
	// handler ran: the request took effect but the caller sees a transport
	// error, as when a connection breaks mid-answer.
	lose func(*http.Request) bool
}

var errLostAnswer = errors.New("connection reset (test)")

func (t *handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	sreq := req.Clone(req.Context())
	sreq.RequestURI = req.URL.RequestURI()
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		_ = req.Body.Close()
		sreq.Body = io.NopCloser(bytes.NewReader(b))
	}
	if t.refuse != nil {
		if err := t.refuse(sreq); err != nil {
			return nil, err
		}
	}
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, sreq)
	if err := req.Context().Err(); err != nil {
		return nil, err
	}
	if t.lose != nil && t.lose(sreq) {
		return nil, errLostAnswer
	}
	resp := rec.Result()
	resp.Request = req
	return resp, nil
}

// newMemClient is a Client whose requests go to h in memory.
func newMemClient(t *testing.T, h http.Handler, opts ...Option) (*Client, *handlerTransport) {
	t.Helper()
	tr := &handlerTransport{h: h}
	c, err := New("http://muster.test", append([]Option{WithHTTPClient(&http.Client{Transport: tr})}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c, tr
}

// maxFakeRequests is more requests than any test makes.
const maxFakeRequests = 20000

// fakeRequest is one request that the fake server saw.
type fakeRequest struct {
	Method, Path, Query string
	At                  time.Time
}

type fakeInstance struct {
	inst  api.Instance
	token string
}

// fakeMuster is an in-memory Muster server with the instance, heartbeat,
// list, events and status routes, as the contract describes them, and the
// revision, policy and resolve routes of fake_policy_test.go. Instances
// expire lazily: every request first removes the instances past their
// deadline, with an instance.timeout event.
type fakeMuster struct {
	t   *testing.T
	mux *http.ServeMux

	mu        sync.Mutex
	instances map[string]*fakeInstance // by id (one service per test is enough, but ns/svc are kept)
	events    []api.Event
	lastEvent uint64
	oldest    uint64        // events before it are compacted away
	notify    chan struct{} // closed at the next event
	down      bool          // answer everything with 503 unavailable
	seq       int
	requests  []fakeRequest
	// intercept, when set, may answer a request instead of the fake: it
	// returns true when it did.
	intercept func(w http.ResponseWriter, r *http.Request) bool
	services  map[string]*fakeService // by "ns/name"; see fake_policy_test.go
	rnd       func(n uint64) uint64   // the draw of splits that are not sticky
}

func newFakeMuster(t *testing.T) *fakeMuster {
	f := &fakeMuster{t: t, mux: http.NewServeMux(), instances: map[string]*fakeInstance{}, notify: make(chan struct{})}
	f.mux.HandleFunc("POST /v1/services/{ns}/{name}/instances", f.register)
	f.mux.HandleFunc("PUT /v1/services/{ns}/{name}/instances/{id}", f.register)
	f.mux.HandleFunc("DELETE /v1/services/{ns}/{name}/instances/{id}", f.deregister)
	f.mux.HandleFunc("POST /v1/services/{ns}/{name}/instances/{id}/heartbeat", f.heartbeat)
	f.mux.HandleFunc("GET /v1/services/{ns}/{name}/instances", f.list)
	f.mux.HandleFunc("GET /v1/events", f.eventsHandler)
	f.mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		st := api.Status{EventIndex: f.lastEvent}
		f.mu.Unlock()
		writeJSON(w, http.StatusOK, st)
	})
	f.addPolicyRoutes()
	return f
}

func (f *fakeMuster) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests = append(f.requests, fakeRequest{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, At: time.Now()})
	if len(f.requests) > maxFakeRequests {
		// A client in a hot loop never lets fake time advance, so the
		// test would otherwise hang until the test binary's timeout.
		panic(fmt.Sprintf("fake: more than %d requests: a hot loop (last %v)", maxFakeRequests, f.requests[len(f.requests)-1]))
	}
	down, intercept := f.down, f.intercept
	f.mu.Unlock()
	if intercept != nil && intercept(w, r) {
		return
	}
	if down {
		writeError(w, http.StatusServiceUnavailable, api.ErrUnavailable, "Node unavailable.")
		return
	}
	f.mu.Lock()
	f.expireLocked(time.Now())
	f.mu.Unlock()
	f.mux.ServeHTTP(w, r)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, typ, msg string) {
	writeJSON(w, status, api.Error{Error: msg, Type: typ, RequestID: "req-1"})
}

// setDown takes the fake down (every request gets 503) or brings it back.
// Coming back after a restart pushes every deadline to now + its timeout,
// as the contract says; pass push=false to model instances that died.
func (f *fakeMuster) setDown(down, push bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = down
	if !down && push {
		now := time.Now()
		for _, fi := range f.instances {
			fi.inst.ExpiresAt = now.Add(time.Duration(fi.inst.HeartbeatTimeout) * time.Second)
		}
	}
}

func (f *fakeMuster) setIntercept(fn func(w http.ResponseWriter, r *http.Request) bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.intercept = fn
}

// log answers the requests seen so far whose method and path match (empty
// matches all).
func (f *fakeMuster) log(method, path string) []fakeRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []fakeRequest
	for _, r := range f.requests {
		if (method == "" || r.Method == method) && (path == "" || r.Path == path) {
			out = append(out, r)
		}
	}
	return out
}

func (f *fakeMuster) instance(id string) (api.Instance, string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fi, ok := f.instances[id]
	if !ok {
		return api.Instance{}, "", false
	}
	return fi.inst, fi.token, true
}

// emitLocked appends an event and wakes the long polls.
func (f *fakeMuster) emitLocked(typ, ns, svc string, payload any) {
	b, err := json.Marshal(payload)
	if err != nil {
		f.t.Errorf("fake: %v", err)
	}
	f.lastEvent++
	f.events = append(f.events, api.Event{ID: f.lastEvent, Type: typ, Namespace: ns, Service: svc, Time: time.Now(), Payload: b})
	close(f.notify)
	f.notify = make(chan struct{})
}

func (f *fakeMuster) emit(typ, ns, svc string, payload any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.emitLocked(typ, ns, svc, payload)
}

// compact drops every event up to and including id.
func (f *fakeMuster) compact(id uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.oldest = id + 1
}

func (f *fakeMuster) expireLocked(now time.Time) {
	for _, id := range slices.Sorted(maps.Keys(f.instances)) {
		fi := f.instances[id]
		if now.After(fi.inst.ExpiresAt) {
			delete(f.instances, id)
			f.emitLocked(api.EventInstanceTimeout, fi.inst.Namespace, fi.inst.Service,
				api.InstanceRemovedPayload{ID: id, RevisionTag: fi.inst.RevisionTag, Deadline: fi.inst.ExpiresAt})
		}
	}
}

func (f *fakeMuster) newToken() string {
	f.seq++
	return "tok-" + strconv.Itoa(f.seq)
}

func (f *fakeMuster) register(w http.ResponseWriter, r *http.Request) {
	var req api.RegisterInstanceRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, api.ErrInvalidJSON, err.Error())
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	id := r.PathValue("id")
	put := id != ""
	if !put {
		id = req.ID
	}
	if id == "" {
		f.seq++
		id = "i-" + strconv.Itoa(f.seq)
	}
	_, exists := f.instances[id]
	if exists && !put {
		writeError(w, http.StatusConflict, api.ErrInstanceExists, "Instance exists.")
		return
	}
	timeout := cmp.Or(req.HeartbeatTimeout, api.DefaultHeartbeatTimeout)
	now := time.Now()
	inst := api.Instance{
		Namespace: r.PathValue("ns"), Service: r.PathValue("name"), ID: id,
		RevisionTag: req.RevisionTag, Address: req.Address, Port: req.Port, PublicURL: req.PublicURL,
		Endpoints: req.Endpoints, Tags: req.Tags, Metadata: req.Metadata, HeartbeatTimeout: timeout,
		Status: api.StatusPassing, RegisteredAt: now, LastHeartbeatAt: now,
		ExpiresAt: now.Add(time.Duration(timeout) * time.Second),
	}
	fi := &fakeInstance{inst: inst, token: f.newToken()}
	f.instances[id] = fi
	status, typ := http.StatusCreated, api.EventInstanceJoin
	if exists {
		status, typ = http.StatusOK, api.EventInstanceUpdate
	}
	f.emitLocked(typ, inst.Namespace, inst.Service, inst)
	writeJSON(w, status, api.Registration{Instance: inst, Token: fi.token})
}

func (f *fakeMuster) deregister(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fi, ok := f.instances[r.PathValue("id")]
	if !ok {
		writeError(w, http.StatusNotFound, api.ErrNotFound, "Instance not found.")
		return
	}
	delete(f.instances, fi.inst.ID)
	f.emitLocked(api.EventInstanceRemove, fi.inst.Namespace, fi.inst.Service,
		api.InstanceRemovedPayload{ID: fi.inst.ID, RevisionTag: fi.inst.RevisionTag})
	w.WriteHeader(http.StatusNoContent)
}

func (f *fakeMuster) heartbeat(w http.ResponseWriter, r *http.Request) {
	var req api.HeartbeatRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, api.ErrInvalidJSON, err.Error())
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	fi, ok := f.instances[r.PathValue("id")]
	if !ok {
		writeError(w, http.StatusNotFound, api.ErrNotFound, "Instance not found.")
		return
	}
	if req.Token != fi.token {
		writeError(w, http.StatusConflict, api.ErrTokenMismatch, "Token mismatch.")
		return
	}
	now := time.Now()
	fi.token = f.newToken()
	fi.inst.LastHeartbeatAt = now
	fi.inst.ExpiresAt = now.Add(time.Duration(fi.inst.HeartbeatTimeout) * time.Second)
	writeJSON(w, http.StatusOK, api.HeartbeatResponse{Token: fi.token, ExpiresAt: fi.inst.ExpiresAt})
}

func (f *fakeMuster) list(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	q := r.URL.Query()
	var all []api.Instance
	for _, fi := range f.instances {
		if fi.inst.Namespace == r.PathValue("ns") && fi.inst.Service == r.PathValue("name") {
			all = append(all, fi.inst)
		}
	}
	slices.SortFunc(all, func(a, b api.Instance) int { return cmp.Compare(a.ID, b.ID) })
	if m := q.Get("marker"); m != "" {
		i, _ := slices.BinarySearchFunc(all, m, func(in api.Instance, m string) int { return cmp.Compare(in.ID, m) })
		for i < len(all) && all[i].ID <= m {
			i++
		}
		all = all[i:]
	}
	limit := api.DefaultListLimit
	if l := q.Get("limit"); l != "" {
		limit, _ = strconv.Atoi(l)
	}
	var next *string
	if len(all) > limit {
		all = all[:limit]
		m := all[limit-1].ID
		next = &m
	}
	w.Header().Set(api.HeaderIndex, strconv.FormatUint(f.lastEvent, 10))
	writeJSON(w, http.StatusOK, api.List[api.Instance]{
		Values:   all,
		Metadata: api.ListMetadata{Count: len(all), Limit: limit, NextMarker: next},
	})
}

func (f *fakeMuster) eventsHandler(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	after, _ := strconv.ParseUint(q.Get("after"), 10, 64)
	wait, _ := strconv.Atoi(q.Get("wait"))
	timer := time.NewTimer(time.Duration(wait) * time.Second)
	defer timer.Stop()
	for {
		f.mu.Lock()
		if f.oldest > 0 && after+1 < f.oldest {
			f.mu.Unlock()
			writeError(w, http.StatusGone, api.ErrEventsCompacted, "Events compacted.")
			return
		}
		var out []api.Event
		for _, ev := range f.events {
			if ev.ID <= after || (q.Has("namespace") && ev.Namespace != q.Get("namespace")) ||
				(q.Has("service") && ev.Service != q.Get("service")) ||
				(q.Has("type") && !slices.Contains(q["type"], ev.Type)) {
				continue
			}
			out = append(out, ev)
		}
		notify, last := f.notify, f.lastEvent
		f.mu.Unlock()
		if len(out) > 0 || wait == 0 {
			next := last
			if len(out) > 0 {
				next = out[len(out)-1].ID
			}
			w.Header().Set(api.HeaderIndex, strconv.FormatUint(last, 10))
			writeJSON(w, http.StatusOK, api.EventList{Events: out, Next: next})
			return
		}
		select {
		case <-notify:
		case <-timer.C:
			wait = 0
		case <-r.Context().Done():
			return
		}
	}
}

// String describes the request, for failure messages.
func (r fakeRequest) String() string {
	return fmt.Sprintf("%s %s?%s @%s", r.Method, r.Path, r.Query, r.At.Format("15:04:05.000"))
}

// last answers the id of the newest event.
func (f *fakeMuster) last() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastEvent
}
