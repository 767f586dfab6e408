package state

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"time"

	"github.com/muster-registry/muster/api"
	"github.com/muster-registry/muster/internal/registry"
)

// ring holds the newest events in id order; ids are contiguous, so the
// position of an id is known without a search. It fills buf up to limit,
// then overwrites the oldest event.
type ring struct {
	buf []api.Event
	// enc[i] is buf[i] as one Server-Sent Events frame, whose data line is
	// the event's JSON; made once when the event is appended, so a change
	// fanned out to many watchers is encoded and framed once.
	enc   [][]byte
	limit int
	start int    // position of the oldest event in buf once it is full
	last  uint64 // id of the newest event ever appended (0: none)
}

func newRing(limit int) ring {
	n := min(limit, 1024)
	return ring{buf: make([]api.Event, 0, n), enc: make([][]byte, 0, n), limit: limit}
}

// push appends e as the next event (it takes the next id).
func (r *ring) push(e api.Event) {
	e.ID = r.last + 1
	// The frame is written in one piece, JSON included, into one allocation:
	// an expiry wave pushes tens of thousands of events a second.
	if b, ok := appendEventFrame(make([]byte, 0, frameSize(&e)), &e); ok {
		r.pushFrame(e, b)
		return
	}
	ev := e // only this path's copy escapes (to encoding/json)
	r.pushEncoded(e, encodeEvent(&ev))
}

// pushEncoded appends e, whose ID must be the next id, with its line =
// encodeEvent(&e) (made ahead, perhaps on another goroutine).
func (r *ring) pushEncoded(e api.Event, line []byte) {
	r.pushFrame(e, sseFrame(&e, line))
}

// pushFrame appends e, whose ID must be the next id, with b, its frame.
func (r *ring) pushFrame(e api.Event, b []byte) {
	r.last++
	if e.ID != r.last {
		panic("state: event pushed out of order") // callers set and check the id
	}
	// The payload ends the encoded line, byte for byte when it is compact
	// (as the payloads we encode are): hold it once, inside the frame, not
	// twice. Either way the ring keeps no reference to the caller's bytes.
	js := frameJSON(&e, b)
	if n := len(e.Payload); n+1 <= len(js) && bytes.Equal(js[len(js)-1-n:len(js)-1], e.Payload) {
		e.Payload = js[len(js)-1-n : len(js)-1 : len(js)-1]
	} else {
		e.Payload = bytes.Clone(e.Payload)
	}
	if len(r.buf) < r.limit {
		r.buf = append(r.buf, e)
		r.enc = append(r.enc, b)
		return
	}
	r.buf[r.start], r.enc[r.start] = e, b
	r.start = (r.start + 1) % r.limit
}

// encodeEvent is the event's JSON as the API writes it: one line, HTML
// characters unescaped.
func encodeEvent(e *api.Event) []byte {
	if b, ok := appendEventJSON(make([]byte, 0, 128+len(e.Payload)), e); ok {
		return b
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(e); err != nil {
		panic("state: encoding an event: " + err.Error()) // our own struct
	}
	// The ring keeps a copy, inside the event's frame.
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// sseFrame is the event's Server-Sent Events frame, as the API streams it:
// "id: <id>\nevent: <type>\ndata: <JSON>\n\n". The JSON is one line.
func sseFrame(e *api.Event, js []byte) []byte {
	b := make([]byte, 0, len("id: \nevent: \ndata: \n\n")+20+len(e.Type)+len(js))
	b = append(b, "id: "...)
	b = strconv.AppendUint(b, e.ID, 10)
	b = append(b, "\nevent: "...)
	b = append(b, e.Type...)
	b = append(b, "\ndata: "...)
	b = append(b, js...)
	return append(b, "\n\n"...)
}

// frameSize is room for e's frame when nothing in it needs escaping.
func frameSize(e *api.Event) int {
	const fixed = len("id: \nevent: \ndata: \n\n") + len(`{"id":,"type":"","namespace":"","service":"","time":"","payload":}`)
	return fixed + 2*20 + 2*len(e.Type) + len(e.Namespace) + len(e.Service) + len(time.RFC3339Nano) + len(e.Payload)
}

// appendEventFrame appends e's frame, as sseFrame(e, encodeEvent(e)) makes
// it, when the hand-written encoder can write e's JSON (ok).
func appendEventFrame(b []byte, e *api.Event) (_ []byte, ok bool) {
	b = append(b, "id: "...)
	b = strconv.AppendUint(b, e.ID, 10)
	b = append(b, "\nevent: "...)
	b = append(b, e.Type...)
	b = append(b, "\ndata: "...)
	if b, ok = appendEventJSON(b, e); !ok {
		return b, false
	}
	return append(b, "\n\n"...), true
}

// frameJSON is the JSON inside a frame made by sseFrame for e.
func frameJSON(e *api.Event, frame []byte) []byte {
	head := len("id: \nevent: \ndata: ") + decimalLen(e.ID) + len(e.Type)
	return frame[head : len(frame)-2 : len(frame)-2]
}

func decimalLen(n uint64) int {
	d := 1
	for ; n >= 10; n /= 10 {
		d++
	}
	return d
}

// oldest returns the id of the oldest held event (last+1 when none is held).
func (r *ring) oldest() uint64 { return r.last - uint64(len(r.buf)) + 1 }

func (r *ring) pos(id uint64) int { return (r.start + int(id-r.oldest())) % len(r.buf) }

// all returns the held events, oldest first.
func (r *ring) all() []api.Event {
	out := make([]api.Event, 0, len(r.buf))
	out = append(out, r.buf[r.start:]...)
	return append(out, r.buf[:r.start]...)
}

// EventFilter selects events: every non-empty field must match; Types matches any of its entries.
type EventFilter struct {
	Namespace string
	Service   string
	Types     []string
}

func (f *EventFilter) match(e *api.Event) bool { return f.Match(e.Type, e.Namespace, e.Service) }

// Events returns up to limit events with id > after that match f, oldest
// first, and the newest event id. When after is older than the retained
// window (events after it were dropped), it fails with ErrCompacted; use
// OldestEvent to say which id is still held. after == 0 with a compacted
// window starts at the oldest held event, so a first read never fails.
func (s *Store) Events(after uint64, f EventFilter, limit int) ([]api.Event, uint64, error) {
	var out []api.Event
	newest, err := s.scanEvents(after, f, limit, func(i int) { out = append(out, s.events.buf[i]) })
	return out, newest, err
}

// EncodedEvent is an event as the API writes it: its id, type, namespace
// and service, its JSON, and its Server-Sent Events frame
// ("id: <id>\nevent: <type>\ndata: <JSON>\n\n"), encoded once when it was
// appended. JSON is part of Frame; neither may be modified.
type EncodedEvent struct {
	ID        uint64
	Type      string
	Namespace string
	Service   string
	JSON      []byte
	Frame     []byte
}

// EncodedEvents is Events, answering each event already encoded.
func (s *Store) EncodedEvents(after uint64, f EventFilter, limit int) ([]EncodedEvent, uint64, error) {
	return s.AppendEncodedEvents(nil, after, f, limit)
}

// AppendEncodedEvents is EncodedEvents appending to dst, so that a caller
// reading again and again can reuse one slice.
func (s *Store) AppendEncodedEvents(dst []EncodedEvent, after uint64, f EventFilter, limit int) ([]EncodedEvent, uint64, error) {
	newest, err := s.scanEvents(after, f, limit, func(i int) {
		e := &s.events.buf[i]
		fr := s.events.enc[i]
		dst = append(dst, EncodedEvent{ID: e.ID, Type: e.Type, Namespace: e.Namespace, Service: e.Service, JSON: frameJSON(e, fr), Frame: fr})
	})
	return dst, newest, err
}

// Match reports whether the filter selects an event of this type,
// namespace and service.
func (f *EventFilter) Match(typ, namespace, service string) bool {
	if f.Namespace != "" && namespace != f.Namespace {
		return false
	}
	if f.Service != "" && service != f.Service {
		return false
	}
	return len(f.Types) == 0 || slices.Contains(f.Types, typ)
}

// scanEvents calls take with the ring position of each of up to limit
// events after `after` that match f, under the read lock.
func (s *Store) scanEvents(after uint64, f EventFilter, limit int, take func(pos int)) (uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r := &s.events
	from := after + 1
	if from < r.oldest() {
		if after != 0 {
			return r.last, registry.ErrCompacted
		}
		from = r.oldest()
	}
	n := 0
	for id := from; id <= r.last && n < limit; id++ {
		if p := r.pos(id); f.match(&r.buf[p]) {
			take(p)
			n++
		}
	}
	return r.last, nil
}

// ScanTo reports the id up to which a filtered read of at most limit events
// after `after` looked: the id of the last returned event when the limit was
// reached, or the newest event otherwise. A follower passes it as the next
// `after` so that events it skipped by filter are not scanned again.
func ScanTo(events []api.Event, limit int, after, newest uint64) uint64 {
	if len(events) >= limit {
		return events[len(events)-1].ID
	}
	return max(after, newest)
}

// ScanToEncoded is ScanTo for encoded events.
func ScanToEncoded(events []EncodedEvent, limit int, after, newest uint64) uint64 {
	if len(events) >= limit {
		return events[len(events)-1].ID
	}
	return max(after, newest)
}

// OldestEvent returns the id of the oldest retained event (Index()+1 when none).
func (s *Store) OldestEvent() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.events.oldest()
}
