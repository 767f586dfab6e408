package host

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/muster-registry/muster/api"
)

// StatePath is the path at which a Host answers its [State] as JSON.
const StatePath = "/_muster/state"

// buildTable makes the routing table of the running exposures, routes in
// Setup order. The caller holds h.mu.
func (h *Host) buildTable(services []Service) *table {
	t := &table{}
	for _, s := range services {
		for _, x := range h.endpoints[s.Name].exposures {
			switch x.spec.Type {
			case api.ExposureHTTP:
				t.routes = append(t.routes, x)
			case api.ExposureHTTPFallback:
				t.fallback = x
			}
		}
	}
	return t
}

// ServeHTTP routes r: GET StatePath answers the host's state; otherwise the
// most specific route whose method (or ANY) and path match, else the
// fallback, else 405 (when the path matched routes of other methods) or
// 404. A disabled endpoint answers 503 with Retry-After. A route answers
// the handler's data as JSON to a client whose Accept prefers
// application/json (or when it has no render function), and the rendered
// page otherwise.
func (h *Host) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == StatePath && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		writeJSON(w, http.StatusOK, h.State())
		return
	}
	// A route retired between the table's load and the gate's enter is
	// routed again on the new table; a change makes at most a few.
	for range 8 {
		t := h.table.Load()
		x, vals, allow := t.route(r)
		if x == nil {
			x = t.fallback
		}
		if x == nil {
			if len(allow) > 0 {
				slices.Sort(allow)
				w.Header().Set("Allow", strings.Join(slices.Compact(allow), ", "))
				h.writeError(w, r, http.StatusMethodNotAllowed, "method not allowed")
				return
			}
			h.writeError(w, r, http.StatusNotFound, "not found")
			return
		}
		if !x.gate.enter() {
			continue
		}
		func() {
			defer x.gate.leave()
			h.serve(w, r, x, vals)
		}()
		return
	}
	h.writeError(w, r, http.StatusServiceUnavailable, "routes are changing")
}

func (h *Host) serve(w http.ResponseWriter, r *http.Request, x *exposure, vals [][2]string) {
	if !x.ep.enabled.Load() {
		w.Header().Set("Retry-After", strconv.Itoa(int((h.opts.RetryAfter+time.Second-1)/time.Second)))
		h.writeError(w, r, http.StatusServiceUnavailable, fmt.Sprintf("endpoint %s is not enabled: its backends are not ready", x.ep.name))
		return
	}
	r = r.WithContext(withCall(r.Context(), Call{Endpoint: x.ep.name, Exposure: x.spec, Time: time.Now()}))
	for _, v := range vals {
		r.SetPathValue(v[0], v[1])
	}
	svc := x.ep.svc.Load()
	data, err := svc.Handler(r)
	if err != nil {
		status := http.StatusInternalServerError
		if he := (*HTTPError)(nil); errors.As(err, &he) && he.Status >= 400 && he.Status <= 599 {
			status = he.Status
		} else {
			h.log.Warn("host: handler failed", "endpoint", x.ep.name, "err", err)
		}
		h.writeError(w, r, status, err.Error())
		return
	}
	render := *x.render.Load()
	if render == nil || wantsJSON(r) {
		writeJSON(w, http.StatusOK, data)
		return
	}
	body, err := render(r, data)
	if err != nil {
		h.log.Warn("host: render failed", "endpoint", x.ep.name, "err", err)
		h.writeError(w, r, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", http.DetectContentType([]byte(body)))
	w.Header().Set("Vary", "Accept")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(body))
}

// invoke runs the handler for a topic message (m) or a cron run (m nil),
// on a request the host makes: POST / with the message as body, under the
// host's run context. A panic is logged, not fatal: the consumer goes on.
func (h *Host) invoke(x *exposure, m *Message, at time.Time) {
	var body []byte
	if m != nil {
		body = m.Data
	}
	ctx := withCall(h.runCtx, Call{Endpoint: x.ep.name, Exposure: x.spec, Message: m, Time: at})
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, "/", bytes.NewReader(body))
	if err != nil {
		h.log.Error("host: making a request", "err", err)
		return
	}
	defer func() {
		if p := recover(); p != nil {
			h.log.Error("host: handler panicked", "endpoint", x.ep.name, "panic", p, "stack", string(debug.Stack()))
		}
	}()
	if _, err := x.ep.svc.Load().Handler(r); err != nil {
		h.log.Warn("host: handler failed", "endpoint", x.ep.name, "exposure", x.spec.Type, "err", err)
	}
}

// wantsJSON reports whether the Accept header ranks application/json
// (named, not through a wildcard) at least as high as any text type.
func wantsJSON(r *http.Request) bool {
	var qJSON, qText float64
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		q := 1.0
		if s, ok := params["q"]; ok {
			if f, err := strconv.ParseFloat(s, 64); err == nil {
				q = f
			}
		}
		switch {
		case mt == "application/json":
			qJSON = max(qJSON, q)
		case strings.HasPrefix(mt, "text/") || mt == "*/*":
			qText = max(qText, q)
		}
	}
	return qJSON > 0 && qJSON >= qText
}

func (h *Host) writeError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	if wantsJSON(r) {
		writeJSON(w, status, map[string]string{"error": msg})
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = fmt.Fprintln(w, strconv.Itoa(status)+" "+msg)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(map[string]string{"error": "encoding the answer: " + err.Error()})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Vary", "Accept")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// State is the host's global state: what runs, what is enabled and why
// not, and the backends.
type State struct {
	// Service is "ns/name" ("" standalone).
	Service string `json:"service"`
	// InstanceID is the registered instance's id ("" before registration
	// or standalone).
	InstanceID string `json:"instance_id"`
	// Ready is true when every endpoint is enabled.
	Ready     bool            `json:"ready"`
	Endpoints []EndpointState `json:"endpoints"`
	Backends  []BackendState  `json:"backends"`
	// Unknown lists the endpoints of the registry's definition that have
	// no handler in this host.
	Unknown []string `json:"unknown_endpoints"`
}

// EndpointState is the state of one endpoint.
type EndpointState struct {
	Name    string `json:"name"`
	Enabled bool   `json:"enabled"`
	// Missing are the backends that are not ready.
	Missing   []string        `json:"missing"`
	Backends  []string        `json:"backends"`
	Exposures []ExposureState `json:"exposures"`
}

// ExposureState is the state of one exposure.
type ExposureState struct {
	api.Exposure
	// Consuming is true while a topic consumer is subscribed.
	Consuming bool `json:"consuming,omitempty"`
	// Error is the last subscription failure of a topic consumer.
	Error string `json:"error,omitempty"`
}

// BackendState is the state of one started backend.
type BackendState struct {
	Name  string `json:"name"`
	Ready bool   `json:"ready"`
	// Service is true for a registry service (written to the definition).
	Service bool `json:"service"`
}

// State answers the host's state at one moment.
func (h *Host) State() State {
	h.mu.Lock()
	defer h.mu.Unlock()
	st := State{Ready: true, Endpoints: []EndpointState{}, Backends: []BackendState{}, Unknown: slices.Clone(h.unknown)}
	if st.Unknown == nil {
		st.Unknown = []string{}
	}
	if h.opts.Client != nil {
		st.Service = h.opts.Namespace + "/" + h.opts.ServiceName
	}
	if h.hb != nil {
		st.InstanceID = h.hb.Instance().ID
	}
	for _, s := range h.running {
		ep := h.endpoints[s.Name]
		es := EndpointState{Name: s.Name, Enabled: ep.enabled.Load(), Missing: slices.Clone(ep.missing),
			Backends: h.needs(s), Exposures: []ExposureState{}}
		if es.Missing == nil {
			es.Missing = []string{}
		}
		for _, x := range ep.exposures {
			es.Exposures = append(es.Exposures, ExposureState{Exposure: x.spec.wire(), Consuming: x.sub != nil, Error: x.subErr})
		}
		st.Ready = st.Ready && es.Enabled
		st.Endpoints = append(st.Endpoints, es)
	}
	for name, run := range h.backends {
		ok, _ := run.b.Ready()
		st.Backends = append(st.Backends, BackendState{Name: name, Ready: ok, Service: isServiceRef(name)})
	}
	slices.SortFunc(st.Backends, func(a, b BackendState) int { return strings.Compare(a.Name, b.Name) })
	return st
}
