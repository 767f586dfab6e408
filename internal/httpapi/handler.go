// Package httpapi is Muster's HTTP API (v1): routing, strict decoding,
// validation, error mapping (once, in errors.go), long-polling and
// Server-Sent Events. Writes become commands proposed through the log;
// reads come from memory.
package httpapi

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/muster-registry/muster/api"
	"github.com/muster-registry/muster/internal/fanout"
	"github.com/muster-registry/muster/internal/fsm"
	"github.com/muster-registry/muster/internal/lease"
	"github.com/muster-registry/muster/internal/state"
)

// Proposer commits a command through the replicated log and returns the
// FSM's result once it is applied.
type Proposer interface {
	Propose(cmd fsm.Command) (fsm.Result, error)
}

// Config is what the handler needs from the rest of the server.
type Config struct {
	Store    *state.Store
	Leases   *lease.Table
	Proposer Proposer
	// Status fills in the node's part of GET /v1/status.
	Status func() api.Status
	Logger *slog.Logger
	// Metrics records request and domain metrics; nil records nothing.
	Metrics *Metrics
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// KeepAlive is the SSE keep-alive period; 0 means 15 s.
	KeepAlive time.Duration
	// Hooks of an embedding program; see server.Config.
	SelectRevision SelectRevisionFunc
	IsDefault      IsDefaultFunc
}

// SelectRevisionFunc picks the revision for a request that names none,
// before the service's policy is consulted; ok false defers to the policy.
type SelectRevisionFunc func(ns, name string, revisions []api.Revision, req api.SelectionRequest) (tag string, ok bool)

// IsDefaultFunc decides, on the leader, whether a revision registered
// without is_default becomes the default; ok false defers to the default
// rule. Its answer counts as an explicit is_default.
type IsDefaultFunc func(ns, name string, rev api.RegisterRevisionRequest, existing []api.Revision) (isDefault, ok bool)

// Handler serves the API.
//
// Concurrency: safe for concurrent use; Drain may be called once, from any goroutine.
type Handler struct {
	store       *state.Store
	leases      *lease.Table
	proposer    Proposer
	status      func() api.Status
	log         *slog.Logger
	metrics     *Metrics
	now         func() time.Time
	keepAlive   time.Duration
	selectHook  SelectRevisionFunc
	defaultHook IsDefaultFunc
	mux         *http.ServeMux
	drain       chan struct{}
	fan         *fanout.Hub // hands new events to event streams
	bufs        bufPool     // buffers of request bodies and encoded answers
	lists       listCache   // encoded unfiltered instance lists
	batches     batchPool
	// jsonType is the Content-Type of the hot paths' answers, assigned to
	// their headers as it is (net/http copies, never appends to, it).
	jsonType []string
}

// New returns the API handler.
func New(cfg Config) *Handler {
	h := &Handler{
		store: cfg.Store, leases: cfg.Leases, proposer: cfg.Proposer, status: cfg.Status,
		log: cfg.Logger, metrics: cfg.Metrics, now: cfg.Now, keepAlive: cfg.KeepAlive,
		selectHook: cfg.SelectRevision, defaultHook: cfg.IsDefault,
		mux: http.NewServeMux(), drain: make(chan struct{}), fan: fanout.New(cfg.Store),
		jsonType: []string{"application/json"},
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.keepAlive <= 0 {
		h.keepAlive = 15 * time.Second
	}
	h.routes()
	return h
}

func (h *Handler) routes() {
	m := h.mux
	m.HandleFunc("POST /v1/services/{ns}/{name}", h.registerRevision)
	m.HandleFunc("GET /v1/services/{ns}/{name}", h.getRevision)
	m.HandleFunc("GET /v1/services/{ns}/{name}/revisions", h.listRevisions)
	m.HandleFunc("DELETE /v1/services/{ns}/{name}/revisions/{tag}", h.deleteRevision)
	m.HandleFunc("GET /v1/services/{ns}/{name}/policy", h.getPolicy)
	m.HandleFunc("PUT /v1/services/{ns}/{name}/policy", h.putPolicy)
	m.HandleFunc("DELETE /v1/services/{ns}/{name}/policy", h.deletePolicy)
	m.HandleFunc("GET /v1/resolve/{ns}/{name}", h.resolve)
	m.HandleFunc("PUT /v1/services/{ns}/{name}/definition", h.putDefinition)
	m.HandleFunc("GET /v1/services/{ns}/{name}/definition", h.getDefinition)
	m.HandleFunc("GET /v1/services/{ns}/{name}/readiness", h.readiness)
	m.HandleFunc("GET /v1/services/{ns}/{name}/dependents", h.dependents)
	m.HandleFunc("GET /v1/graph", h.graph)

	m.HandleFunc("POST /v1/services/{ns}/{name}/instances", h.postInstance)
	m.HandleFunc("GET /v1/services/{ns}/{name}/instances", h.listInstances)
	m.HandleFunc("GET /v1/services/{ns}/{name}/instances/{id}", h.getInstance)
	m.HandleFunc("PUT /v1/services/{ns}/{name}/instances/{id}", h.putInstance)
	m.HandleFunc("PATCH /v1/services/{ns}/{name}/instances/{id}", h.patchInstance)
	m.HandleFunc("DELETE /v1/services/{ns}/{name}/instances/{id}", h.deleteInstance)
	m.HandleFunc(heartbeatPattern, h.heartbeat)
	m.HandleFunc("POST /v1/heartbeats", h.heartbeats)

	m.HandleFunc("GET /v1/services", h.listServices)
	m.HandleFunc("GET /v1/events", h.events)
	m.HandleFunc("GET /v1/url-map/{ns}", h.urlMap)
	m.HandleFunc("GET /v1/health", h.health)
	m.HandleFunc("GET /v1/status", h.getStatus)
	if h.metrics != nil {
		m.Handle("GET /metrics", h.metrics.Handler())
	}
}

// Drain makes long-polls answer at once and event streams end, so that a
// graceful shutdown is not held up by watchers.
func (h *Handler) Drain() { close(h.drain) }

// ServeHTTP runs the middleware (request id, panic recovery, metrics, body
// limit) and routes the request; unknown routes and methods get the API's
// error shape, not the mux's plain text.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := h.now()
	id := r.Header.Get(api.HeaderRequestID)
	if id == "" || len(id) > 128 {
		id = newRequestID()
	}
	// Assigned, not Set: the key is canonical already, and this is on
	// every request.
	w.Header()[api.HeaderRequestID] = []string{id}
	rw := &statusWriter{ResponseWriter: w, req: r}
	defer func() {
		rw.routing = false
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			h.log.Error("handler panicked", "request_id", id, "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			if !rw.wrote {
				writeJSON(rw, http.StatusInternalServerError, api.Error{Error: "Internal error.", Type: api.ErrInternal, RequestID: id})
			}
		}
		if h.metrics != nil {
			h.metrics.observeRequest(r.Pattern, rw.status, h.now().Sub(start))
		}
		// Checked first: the arguments of a disabled Debug still cost allocations.
		if h.log.Enabled(context.Background(), slog.LevelDebug) {
			h.log.Debug("request", "request_id", id, "method", r.Method, "path", r.URL.Path, "status", rw.status, "duration", h.now().Sub(start))
		}
	}()

	limit := int64(api.MaxBodyBytes)
	if r.URL.Path == "/v1/heartbeats" {
		limit = api.MaxBatchBodyBytes // a full batch does not fit 64 KiB
	}
	if r.ContentLength > limit {
		h.writeError(rw, r, tooLarge(limit))
		return
	}
	r.Body = http.MaxBytesReader(rw, r.Body, limit)

	// The most frequent request, routed without the mux (see route.go).
	if ns, name, id, ok := heartbeatRoute(r); ok {
		r.Pattern = heartbeatPattern
		h.beat(rw, r, ns, name, id)
		return
	}
	// Route once: the mux's own answer for a request that matches no route
	// (404, 405, or a redirect to a cleaned path that matches none either)
	// is recorded by rw instead of sent, and answered in the API's shape.
	rw.routing = true
	h.mux.ServeHTTP(rw, r)
	rw.routing = false
	if r.Pattern == "" {
		h.noRoute(rw, r, &rw.fallback)
	}
}

// noRoute answers a request that matches no pattern, given what the mux
// itself answered: 405 with Allow when the path exists for other methods,
// else 404.
func (h *Handler) noRoute(w http.ResponseWriter, r *http.Request, mux *probeWriter) {
	if mux.status == http.StatusMethodNotAllowed {
		allow := mux.Header().Get("Allow")
		w.Header().Set("Allow", allow)
		h.writeError(w, r, &httpError{http.StatusMethodNotAllowed, api.ErrMethodNotAllowed, "Method not allowed.",
			fmt.Sprintf("%s is not allowed on %s; allowed: %s", r.Method, r.URL.Path, allow)})
		return
	}
	h.writeError(w, r, &httpError{http.StatusNotFound, api.ErrNotFound, "Not found.", fmt.Sprintf("no route for %s %s", r.Method, r.URL.Path)})
}

// probeWriter records what the mux's own 404/405 handler answers.
type probeWriter struct {
	header http.Header
	status int
}

func (p *probeWriter) Header() http.Header {
	if p.header == nil {
		p.header = make(http.Header)
	}
	return p.header
}

func (p *probeWriter) Write(b []byte) (int, error) { return len(b), nil }

func (p *probeWriter) WriteHeader(s int) {
	if p.status == 0 {
		p.status = s
	}
}

// statusWriter remembers the status for metrics and logs. While routing,
// it diverts to fallback what the mux answers by itself for a request that
// matches no route (the mux leaves Pattern empty for those), so that
// ServeHTTP can answer it in the API's shape.
type statusWriter struct {
	http.ResponseWriter
	status   int
	wrote    bool
	req      *http.Request
	routing  bool
	fallback probeWriter
}

func (s *statusWriter) unrouted() bool { return s.routing && s.req.Pattern == "" }

func (s *statusWriter) Header() http.Header {
	if s.unrouted() {
		return s.fallback.Header()
	}
	return s.ResponseWriter.Header()
}

func (s *statusWriter) WriteHeader(code int) {
	if s.unrouted() {
		s.fallback.WriteHeader(code)
		return
	}
	if !s.wrote {
		s.status, s.wrote = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.unrouted() {
		return s.fallback.Write(b)
	}
	if !s.wrote {
		s.status, s.wrote = http.StatusOK, true
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush on the real writer.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// newRequestID returns 24 hex digits. A request id only has to be unique
// enough to find a request in the logs, not secret: the runtime's
// per-thread generator (math/rand/v2) is enough, and much cheaper.
func newRequestID() string {
	var raw [12]byte
	binary.LittleEndian.PutUint64(raw[:8], rand.Uint64())
	binary.LittleEndian.PutUint32(raw[8:], rand.Uint32())
	var out [24]byte
	hex.Encode(out[:], raw[:])
	return string(out[:])
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // constraints such as ">=2.0.0" stay readable
	_ = enc.Encode(v)
}

// marshal encodes v on one line without HTML escaping, as writeJSON does.
func marshal(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

func setIndex(w http.ResponseWriter, idx uint64) {
	w.Header().Set(api.HeaderIndex, strconv.FormatUint(idx, 10))
}

// stamp is the leader's time for a command: UTC, millisecond precision.
func (h *Handler) stamp() time.Time { return h.now().UTC().Truncate(time.Millisecond) }

func (h *Handler) propose(cmd fsm.Command) (fsm.Result, error) {
	res, err := h.proposer.Propose(cmd)
	if err != nil {
		return res, err
	}
	return res, res.Err
}
