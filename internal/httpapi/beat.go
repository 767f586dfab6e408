package httpapi

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/muster-registry/muster/api"
	"github.com/muster-registry/muster/internal/state"
)

// Heartbeats are the most frequent requests, and their bodies are tiny and
// regular. The bodies that SDKs send, compact JSON with the fields in the
// documented order and plain ASCII strings, are read here by hand; any other
// body goes through decode, which reads these forms the same way, so the
// fast path changes no answer, only its cost. The answers are written by
// hand too, byte for byte as writeJSON would (TestHeartbeatFastPaths holds
// both to the generic code).

// readBody reads the request body into buf (reused from the handler's pool)
// and maps a body over the limit as decode does.
func readBody(r *http.Request, buf []byte) ([]byte, error) {
	if r.ContentLength > 0 && int64(cap(buf)) < r.ContentLength {
		buf = make([]byte, 0, r.ContentLength)
	}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			return buf, nil
		}
		if err != nil {
			return buf, readError(err)
		}
	}
}

// isPlain reports whether c may stand in a JSON string as itself and means
// the same byte to encoding/json: printable ASCII other than '"' and '\'.
func isPlain(c byte) bool { return c >= 0x20 && c <= 0x7e && c != '"' && c != '\\' }

// plainString reads a string value of plain bytes at b[i:], just after its
// opening quote; end is the index of its closing quote.
func plainString(b []byte, i int) (end int, ok bool) {
	for ; i < len(b); i++ {
		if c := b[i]; !isPlain(c) {
			return i, c == '"'
		}
	}
	return i, false
}

// trimJSONSpace drops the whitespace JSON allows after a value.
func trimJSONSpace(b []byte) []byte {
	return bytes.TrimRight(b, " \t\r\n")
}

// heartbeatToken reads the body of a single heartbeat, {"token":"…"}; ok is
// false for any other form.
func heartbeatToken(body []byte) (token string, ok bool) {
	const pre, post = `{"token":"`, `"}`
	b := trimJSONSpace(body)
	if !bytes.HasPrefix(b, []byte(pre)) || !bytes.HasSuffix(b, []byte(post)) || len(b) < len(pre)+len(post) {
		return "", false
	}
	end, ok := plainString(b, len(pre))
	if !ok || end != len(b)-len(post) {
		return "", false
	}
	return string(b[len(pre):end]), true
}

// compactReader reads a body in the compact form SDKs send.
type compactReader struct {
	b []byte
	i int
}

// lit consumes s.
func (r *compactReader) lit(s string) bool {
	if !bytes.HasPrefix(r.b[r.i:], []byte(s)) {
		return false
	}
	r.i += len(s)
	return true
}

// batchReader reads the compact form of a batch body.
type batchReader struct {
	compactReader
	// the previous item's namespace and service: a batch mostly repeats
	// them, so they are shared instead of allocated per item
	ns, svc string
}

// str consumes `key":"value"` (the quote before key is already consumed)
// and returns the value's bytes.
func (r *batchReader) str(key string) ([]byte, bool) {
	if !r.lit(key) || !r.lit(`":`) {
		return nil, false
	}
	return r.quoted()
}

// shared returns v as a string, reusing prev when it holds the same bytes.
func shared(prev string, v []byte) string {
	if string(v) == prev {
		return prev
	}
	return string(v)
}

// item reads one {"namespace":…,"service":…,"id":…,"token":…}.
func (r *batchReader) item() (api.BatchHeartbeat, bool) {
	var hb api.BatchHeartbeat
	ns, ok := r.str(`{"namespace`)
	if !ok {
		return hb, false
	}
	svc, ok := r.str(`,"service`)
	if !ok {
		return hb, false
	}
	id, ok := r.str(`,"id`)
	if !ok {
		return hb, false
	}
	tok, ok := r.str(`,"token`)
	if !ok || !r.lit("}") {
		return hb, false
	}
	r.ns, r.svc = shared(r.ns, ns), shared(r.svc, svc)
	return api.BatchHeartbeat{Namespace: r.ns, Service: r.svc, ID: string(id), Token: string(tok)}, true
}

// parseBatch reads a batch body in its compact form into out (reused);
// ok is false for any other form.
func parseBatch(body []byte, out []api.BatchHeartbeat) ([]api.BatchHeartbeat, bool) {
	r := batchReader{compactReader: compactReader{b: trimJSONSpace(body)}}
	out = out[:0]
	if !r.lit(`{"heartbeats":[`) {
		return out, false
	}
	if r.lit("]}") {
		return out, r.i == len(r.b)
	}
	for {
		hb, ok := r.item()
		if !ok {
			return out, false
		}
		out = append(out, hb)
		if r.lit("]}") {
			return out, r.i == len(r.b)
		}
		if !r.lit(",") {
			return out, false
		}
	}
}

// appendHeartbeatAnswer appends the answer to a heartbeat as writeJSON
// writes api.HeartbeatResponse; ok is false for a time that RFC 3339 cannot
// represent.
func appendHeartbeatAnswer(b []byte, token string, expires time.Time) (_ []byte, ok bool) {
	b = append(b, `{"token":`...)
	b = appendString(b, token)
	b, ok = state.AppendJSONTime(b, `,"expires_at":`, expires)
	return append(b, "}\n"...), ok
}

// appendBatchAnswer appends api.BatchHeartbeatResponse as writeJSON writes
// it; ok is false for a time that RFC 3339 cannot represent. The deadlines
// of a batch are mostly equal, so each is encoded once.
func appendBatchAnswer(b []byte, results []api.BatchHeartbeatResult) (_ []byte, ok bool) {
	b = append(b, `{"results":`...)
	if results == nil {
		return append(b, "null}\n"...), true
	}
	b = append(b, '[')
	var last time.Time
	var lastAt, lastEnd int // the bytes of last's encoding in b
	for i := range results {
		res := &results[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '{')
		comma := false
		if res.Token != "" {
			b = append(b, `"token":`...)
			b = appendString(b, res.Token)
			comma = true
		}
		if !res.ExpiresAt.IsZero() {
			if comma {
				b = append(b, ',')
			}
			if lastEnd > 0 && res.ExpiresAt.Equal(last) && res.ExpiresAt.Location() == last.Location() {
				b = append(b, b[lastAt:lastEnd]...)
			} else {
				at := len(b)
				if b, ok = state.AppendJSONTime(b, `"expires_at":`, res.ExpiresAt); !ok {
					return b, false
				}
				last, lastAt, lastEnd = res.ExpiresAt, at, len(b)
			}
			comma = true
		}
		if res.Error != nil {
			if comma {
				b = append(b, ',')
			}
			b = append(b, `"error":`...)
			b = append(b, marshal(res.Error)...)
		}
		b = append(b, '}')
	}
	return append(b, "]}\n"...), true
}
