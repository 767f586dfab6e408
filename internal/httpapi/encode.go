package httpapi

import (
	"net/http"
	"strconv"
	"sync"

	"github.com/muster-registry/muster/api"
	"github.com/muster-registry/muster/internal/state"
)

// An instance list is the largest answer on the hottest read (a lookup), and
// encoding/json spends most of its time there on reflection and on three
// time.Time MarshalJSON calls per instance. appendInstanceList writes the
// same bytes (as the list's wire form encodes to) by hand: field order, escaping (HTML characters unescaped, as
// writeJSON does), sorted map keys, null for nil slices and maps, and times
// as time.Time.MarshalJSON writes them. TestInstanceListEncoding holds it to
// encoding/json's output.

// bufPool recycles encoding buffers of the handler.
type bufPool struct{ p sync.Pool }

func (p *bufPool) get() *[]byte {
	if b, ok := p.p.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 0, 4096)
	return &b
}

// put keeps buffers of ordinary size; one grown by a huge answer is left to
// the collector rather than held for ever.
func (p *bufPool) put(b *[]byte) {
	if cap(*b) > 1<<20 {
		return
	}
	*b = (*b)[:0]
	p.p.Put(b)
}

// listed is one instance of a list answer: its wire form, whose Metadata
// is left nil, and the stored metadata, which the encoder writes from its
// pairs, so that a list does not build a map per instance.
type listed struct {
	api.Instance
	md state.Metadata
}

// wire returns the instance as the API type, metadata included ({} when it
// has none, as state.InstanceView gives it).
func (l *listed) wire() api.Instance {
	v := l.Instance
	v.Metadata = l.md.WireMap()
	return v
}

// writeInstanceList writes a page of instances as writeJSON would write
// their wire form, with a hand-written encoder.
func (h *Handler) writeInstanceList(w http.ResponseWriter, status int, l api.List[listed]) {
	buf := h.bufs.get()
	defer h.bufs.put(buf)
	b, ok := appendInstanceList((*buf)[:0], l)
	if !ok {
		// A time encoding/json refuses: answer exactly as it would.
		vs := make([]api.Instance, len(l.Values))
		for i := range l.Values {
			vs[i] = l.Values[i].wire()
		}
		writeJSON(w, status, api.List[api.Instance]{Values: vs, Metadata: l.Metadata})
		return
	}
	*buf = b
	writeListBody(w, status, b)
}

// writeRegistration writes the answer to a registration, inst and its
// first token, as writeJSON would, with the hand-written encoder: every
// register is answered with one.
func (h *Handler) writeRegistration(w http.ResponseWriter, status int, inst listed, token string) {
	buf := h.bufs.get()
	defer h.bufs.put(buf)
	b, ok := appendRegistration((*buf)[:0], &inst, token)
	if !ok {
		writeJSON(w, status, api.Registration{Instance: inst.wire(), Token: token})
		return
	}
	*buf = b
	writeListBody(w, status, b)
}

// appendRegistration appends a registration's answer and a newline: the
// instance's fields, then the token, as encoding/json writes
// api.Registration, whose Instance is embedded.
func appendRegistration(b []byte, inst *listed, token string) (_ []byte, ok bool) {
	if b, ok = appendInstance(b, inst); !ok {
		return b, false
	}
	b = append(b[:len(b)-1], `,"token":`...)
	b = appendString(b, token)
	return append(b, "}\n"...), true
}

// appendInstanceList appends l and a newline, as json.Encoder.Encode does;
// ok is false for a time that RFC 3339 cannot represent.
func appendInstanceList(b []byte, l api.List[listed]) (_ []byte, ok bool) {
	b = append(b, `{"values":`...)
	if l.Values == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range l.Values {
			if i > 0 {
				b = append(b, ',')
			}
			if b, ok = appendInstance(b, &l.Values[i]); !ok {
				return b, false
			}
		}
		b = append(b, ']')
	}
	b = append(b, `,"metadata":{"count":`...)
	b = strconv.AppendInt(b, int64(l.Metadata.Count), 10)
	b = append(b, `,"limit":`...)
	b = strconv.AppendInt(b, int64(l.Metadata.Limit), 10)
	b = append(b, `,"next_marker":`...)
	if l.Metadata.NextMarker == nil {
		b = append(b, "null"...)
	} else {
		b = appendString(b, *l.Metadata.NextMarker)
	}
	return append(b, "}}\n"...), true
}

func appendInstance(b []byte, l *listed) (_ []byte, ok bool) {
	return state.AppendInstanceJSON(b, &l.Instance, l.md)
}

// appendString quotes s as encoding/json does with HTML escaping off.
func appendString(b []byte, s string) []byte { return state.AppendJSONString(b, s) }
