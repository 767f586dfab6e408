package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/muster-registry/muster/api"
	"github.com/muster-registry/muster/internal/registry"
	"github.com/muster-registry/muster/internal/state"
)

type eventQuery struct {
	filter state.EventFilter
	after  uint64
	limit  int
	wait   time.Duration
}

func parseEventQuery(r *http.Request) (eventQuery, error) {
	var eq eventQuery
	q, err := parseQuery(r, "namespace", "service", "type", "after", "limit", "wait")
	if err != nil {
		return eq, err
	}
	if eq.filter.Namespace, err = q.one("namespace"); err != nil {
		return eq, err
	}
	if eq.filter.Namespace != "" {
		if err := registry.ValidateNamespace(eq.filter.Namespace); err != nil {
			return eq, err
		}
	}
	if eq.filter.Service, err = q.one("service"); err != nil {
		return eq, err
	}
	if eq.filter.Service != "" {
		if err := registry.ValidateServiceName(eq.filter.Service); err != nil {
			return eq, err
		}
	}
	for _, t := range q.all("type") {
		if !slices.Contains(api.EventTypes(), t) {
			return eq, badRequest("unknown event type %q; known types: %s", t, strings.Join(api.EventTypes(), ", "))
		}
		eq.filter.Types = append(eq.filter.Types, t)
	}
	if eq.after, err = q.uint("after", 0, 0, 1<<63); err != nil {
		return eq, err
	}
	limit, err := q.uint("limit", api.DefaultListLimit, 1, api.MaxListLimit)
	if err != nil {
		return eq, err
	}
	eq.limit = int(limit)
	wait, err := q.uint("wait", 0, 0, api.MaxWaitSeconds)
	if err != nil {
		return eq, err
	}
	eq.wait = time.Duration(wait) * time.Second
	return eq, nil
}

// read returns the events after eq.after, already encoded, or the error to
// answer with.
func (h *Handler) read(eq eventQuery) ([]state.EncodedEvent, uint64, error) {
	evs, newest, err := h.store.EncodedEvents(eq.after, eq.filter, eq.limit)
	if errors.Is(err, registry.ErrCompacted) {
		return nil, newest, &httpError{http.StatusGone, api.ErrEventsCompacted, "Events compacted.",
			fmt.Sprintf("events after %d are no longer held; the oldest held is %d: list again and follow from the list's %s", eq.after, h.store.OldestEvent(), api.HeaderIndex)}
	}
	if err == nil && eq.after > newest {
		return nil, newest, badRequest("after=%d is newer than the newest event %d", eq.after, newest)
	}
	return evs, newest, err
}

// events serves GET /v1/events: a poll, a long-poll (wait) or, with
// Accept: text/event-stream, a Server-Sent Events stream.
func (h *Handler) events(w http.ResponseWriter, r *http.Request) {
	eq, err := parseEventQuery(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	if strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
		h.stream(w, r, eq)
		return
	}
	var timer <-chan time.Time
	if eq.wait > 0 {
		t := time.NewTimer(eq.wait)
		defer t.Stop()
		timer = t.C
	}
	for {
		watch := h.store.Watch()
		evs, newest, err := h.read(eq)
		if err != nil {
			setIndex(w, newest)
			h.writeError(w, r, err)
			return
		}
		if len(evs) > 0 || timer == nil {
			h.writeEvents(w, evs, eq, newest)
			return
		}
		// Nothing matched up to newest: look only after it from now on, so a
		// flood of events this filter skips never pushes it out of the window.
		eq.after = max(eq.after, newest)
		select {
		case <-watch:
		case <-timer:
			timer = nil // answer with what there is (nothing)
		case <-h.drain:
			timer = nil
		case <-r.Context().Done():
			return
		}
	}
}

// writeEvents writes an api.EventList from events encoded once in the
// store: the same bytes encoding/json would write for it.
func (h *Handler) writeEvents(w http.ResponseWriter, evs []state.EncodedEvent, eq eventQuery, newest uint64) {
	setIndex(w, newest)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	n := 32
	for _, e := range evs {
		n += len(e.JSON) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, `{"events":[`...)
	for i, e := range evs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, e.JSON...)
	}
	b = append(b, `],"next":`...)
	b = strconv.AppendUint(b, state.ScanToEncoded(evs, eq.limit, eq.after, newest), 10)
	b = append(b, "}\n"...)
	_, _ = w.Write(b)
}

// stream writes events as SSE until the client leaves or the server drains.
// Last-Event-ID, when sent by a reconnecting client, takes the place of after.
func (h *Handler) stream(w http.ResponseWriter, r *http.Request, eq eventQuery) {
	if last := r.Header.Get("Last-Event-ID"); last != "" {
		n, err := strconv.ParseUint(last, 10, 64)
		if err != nil {
			h.writeError(w, r, badRequest("Last-Event-ID must be an event id, not %q", last))
			return
		}
		eq.after = n
	}
	rc := http.NewResponseController(w)
	started := false
	ping := time.NewTicker(h.keepAlive)
	defer ping.Stop()
	if h.metrics != nil {
		h.metrics.watchers.Inc()
		defer h.metrics.watchers.Dec()
	}
	for {
		watch := h.store.Watch()
		evs, newest, err := h.read(eq)
		if err != nil {
			if !started {
				setIndex(w, newest)
				h.writeError(w, r, err)
				return
			}
			// Mid-stream the status is sent; say why the stream ends, in the error shape.
			_, body, _ := answer(err)
			body.RequestID = w.Header().Get(api.HeaderRequestID)
			b := marshal(body)
			fmt.Fprintf(w, "event: error\ndata: %s\n\n", b)
			_ = rc.Flush()
			return
		}
		if !started {
			w.Header().Set("Content-Type", "text/event-stream")
			w.Header().Set("Cache-Control", "no-cache")
			w.Header().Set("X-Accel-Buffering", "no")
			setIndex(w, newest)
			w.WriteHeader(http.StatusOK)
			started = true
		}
		for _, e := range evs {
			if _, err := fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", e.ID, e.Type, e.JSON); err != nil {
				return
			}
		}
		eq.after = state.ScanToEncoded(evs, eq.limit, eq.after, newest)
		if err := rc.Flush(); err != nil {
			return
		}
		if len(evs) >= eq.limit {
			continue // more are waiting
		}
		select {
		case <-watch:
		case <-ping.C:
			if _, err := fmt.Fprint(w, ": ping\n\n"); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
		case <-h.drain:
			return
		case <-r.Context().Done():
			return
		}
	}
}
