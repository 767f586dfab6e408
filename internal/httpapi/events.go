package httpapi

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/muster-registry/muster/api"
	"github.com/muster-registry/muster/internal/fanout"
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

// burstRead is the most events a stream that fell behind the hub reads
// from the store at once, whatever its limit (which then only sets how
// often it flushes). An expiry wave commits thousands of events a command,
// back to back, and a reader gets the store's lock once between two
// commands: a stream that read a page of a thousand at a time fell a
// command's worth further behind with every command. (Catching up from
// an old id, as a reconnecting stream does, still reads a page at a time:
// a reconnect storm must not hold thousands of large reads at once.)
const burstRead = api.MaxListLimit

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
//
// It reads the store once, to catch up, and then takes what the hub hands it:
// every frame pending since its last write goes out in one write, without
// the store's lock. When it fell too far behind for the hub to keep its
// frames, it reads the rest from the store, from where they end.
func (h *Handler) stream(w http.ResponseWriter, r *http.Request, eq eventQuery) {
	if last := r.Header.Get("Last-Event-ID"); last != "" {
		n, err := strconv.ParseUint(last, 10, 64)
		if err != nil {
			h.writeError(w, r, badRequest("Last-Event-ID must be an event id, not %q", last))
			return
		}
		eq.after = n
	}
	// Subscribe before the first read: what the read misses, the hub hands over.
	sub := h.fan.Subscribe(eq.filter)
	defer sub.Close()
	evs, newest, err := h.read(eq)
	if err != nil {
		setIndex(w, newest)
		h.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	setIndex(w, newest)
	w.WriteHeader(http.StatusOK)
	if h.metrics != nil {
		h.metrics.watchers.Inc()
		defer h.metrics.watchers.Dec()
	}
	s := &sseStream{h: h, w: w, rc: http.NewResponseController(w), eq: eq}
	if !s.catchUp(evs, newest, eq.limit) {
		return
	}
	ping := time.NewTicker(h.keepAlive)
	defer ping.Stop()
	var frames []fanout.Frame
	for {
		select {
		case <-sub.Wake():
			var upTo uint64
			var lost bool
			frames, upTo, lost = sub.Take(frames)
			ok := s.writeFrames(frames, upTo)
			sub.Done()
			if !ok {
				return
			}
			if lost && !s.readStore() { // it fell behind: the rest is in the store
				return
			}
		case <-ping.C:
			if _, err := io.WriteString(w, ": ping\n\n"); err != nil {
				return
			}
			if err := s.rc.Flush(); err != nil {
				return
			}
		case <-h.drain:
			return
		case <-r.Context().Done():
			return
		}
	}
}

// sseStream is one event stream after its headers were sent. eq.after is
// the id up to which it has written every event its filter selects.
type sseStream struct {
	h  *Handler
	w  http.ResponseWriter
	rc *http.ResponseController
	eq eventQuery
}

// readStore writes the events after eq.after from the store, read burstRead
// at a time; false when the stream must end.
func (s *sseStream) readStore() bool {
	chunk := burstRead // a limit is at most api.MaxListLimit, which it is
	q := s.eq
	q.limit = chunk
	evs, newest, err := s.h.read(q)
	if err != nil {
		s.fail(err)
		return false
	}
	return s.catchUp(evs, newest, chunk)
}

// catchUp writes evs, a read of at most chunk events of the store that
// answered newest, flushing every eq.limit events and at the end, and
// reads on, chunk at a time, while reads come back full; false when the
// stream must end.
func (s *sseStream) catchUp(evs []state.EncodedEvent, newest uint64, chunk int) bool {
	for {
		for i, e := range evs {
			if _, err := s.w.Write(e.Frame); err != nil {
				return false
			}
			if (i+1)%s.eq.limit == 0 && i+1 < len(evs) {
				if err := s.rc.Flush(); err != nil {
					return false
				}
			}
		}
		s.eq.after = state.ScanToEncoded(evs, chunk, s.eq.after, newest)
		if err := s.rc.Flush(); err != nil {
			return false
		}
		if len(evs) < chunk {
			return true
		}
		q := s.eq
		q.limit = chunk
		var err error
		if evs, newest, err = s.h.read(q); err != nil {
			s.fail(err)
			return false
		}
	}
}

// writeFrames writes the frames after eq.after, flushing every eq.limit
// frames and at the end, and moves eq.after to upTo or past the last frame;
// false when the stream must end.
func (s *sseStream) writeFrames(frames []fanout.Frame, upTo uint64) bool {
	from := s.eq.after
	n := 0
	for _, f := range frames {
		if f.ID <= from {
			continue // already written from a read of the store
		}
		if _, err := s.w.Write(f.Bytes); err != nil {
			return false
		}
		s.eq.after = f.ID
		if n++; n%s.eq.limit == 0 {
			if err := s.rc.Flush(); err != nil {
				return false
			}
		}
	}
	s.eq.after = max(s.eq.after, upTo)
	if n%s.eq.limit == 0 {
		return true // nothing written since the last flush
	}
	return s.rc.Flush() == nil
}

// fail ends a started stream with an "error" event in the error shape: the
// status is sent, so say there why the stream ends.
func (s *sseStream) fail(err error) {
	_, body, _ := answer(err)
	body.RequestID = s.w.Header().Get(api.HeaderRequestID)
	b := marshal(body)
	if _, err := fmt.Fprintf(s.w, "event: error\ndata: %s\n\n", b); err == nil {
		_ = s.rc.Flush()
	}
}
