package client

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/muster-registry/muster/api"
)

// Heartbeats are the SDK's most frequent calls. Their bodies are encoded by
// hand, byte for byte as encoding/json would encode them, when every string
// is plain (printable ASCII that encoding/json writes as is); their answers
// are read by hand when they come in the compact form the server writes,
// and by encoding/json otherwise, so the results are the same either way.

// isPlainOut reports whether encoding/json writes c as itself in a string
// (it escapes '<', '>' and '&' as well as quotes, backslashes and control
// characters).
func isPlainOut(c byte) bool {
	return c >= 0x20 && c <= 0x7e && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
}

// appendPlain appends s quoted; ok is false unless every byte is plain.
func appendPlain(b []byte, s string) (_ []byte, ok bool) {
	for i := 0; i < len(s); i++ {
		if !isPlainOut(s[i]) {
			return b, false
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"'), true
}

// heartbeatBody is json.Marshal(api.HeartbeatRequest{Token: token}).
func heartbeatBody(token string) []byte {
	b, ok := appendPlain(append(make([]byte, 0, len(token)+12), `{"token":`...), token)
	if !ok {
		b, _ = json.Marshal(api.HeartbeatRequest{Token: token}) // a struct of one string always encodes
		return b
	}
	return append(b, '}')
}

// batchBody is json.Marshal(api.BatchHeartbeatRequest{Heartbeats: beats});
// ok is false when it must be left to encoding/json.
func batchBody(beats []api.BatchHeartbeat) (_ []byte, ok bool) {
	if beats == nil {
		return nil, false
	}
	n := 20
	for i := range beats {
		hb := &beats[i]
		n += 52 + len(hb.Namespace) + len(hb.Service) + len(hb.ID) + len(hb.Token)
	}
	b := append(make([]byte, 0, n), `{"heartbeats":[`...)
	for i := range beats {
		hb := &beats[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"namespace":`...)
		b, ok = appendPlain(b, hb.Namespace)
		b = append(b, `,"service":`...)
		if ok {
			b, ok = appendPlain(b, hb.Service)
		}
		b = append(b, `,"id":`...)
		if ok {
			b, ok = appendPlain(b, hb.ID)
		}
		b = append(b, `,"token":`...)
		if ok {
			b, ok = appendPlain(b, hb.Token)
		}
		if !ok {
			return nil, false
		}
		b = append(b, '}')
	}
	return append(b, "]}"...), true
}

// answerReader reads an answer in the server's compact form.
type answerReader struct {
	b []byte
	i int
}

// lit consumes s.
func (r *answerReader) lit(s string) bool {
	if !bytes.HasPrefix(r.b[r.i:], []byte(s)) {
		return false
	}
	r.i += len(s)
	return true
}

// str consumes a string of printable ASCII without escapes (which
// encoding/json reads as is) and returns its bytes without the quotes.
func (r *answerReader) str() ([]byte, bool) {
	if !r.lit(`"`) {
		return nil, false
	}
	for j := r.i; j < len(r.b); j++ {
		c := r.b[j]
		if c == '"' {
			v := r.b[r.i:j]
			r.i = j + 1
			return v, true
		}
		if c < 0x20 || c > 0x7e || c == '\\' {
			return nil, false
		}
	}
	return nil, false
}

// lease consumes `"token":"…","expires_at":"…"}`, the answer to one
// heartbeat. The previous deadline's text and value are passed in and out:
// the deadlines of a batch are mostly the same, and are parsed once.
func (r *answerReader) lease(prevText *[]byte, prev *time.Time) (string, time.Time, bool) {
	if !r.lit(`"token":`) {
		return "", time.Time{}, false
	}
	tok, ok := r.str()
	if !ok || !r.lit(`,"expires_at":`) {
		return "", time.Time{}, false
	}
	at := r.i
	if _, ok := r.str(); !ok || !r.lit("}") {
		return "", time.Time{}, false
	}
	text := r.b[at : r.i-1] // with its quotes, as encoding/json hands it to UnmarshalJSON
	if bytes.Equal(text, *prevText) {
		return string(tok), *prev, true
	}
	var t time.Time
	if err := t.UnmarshalJSON(text); err != nil {
		return "", time.Time{}, false // encoding/json gives the error
	}
	*prevText, *prev = text, t
	return string(tok), t, true
}

// end reports whether only the whitespace encoding/json allows is left.
func (r *answerReader) end() bool {
	return len(bytes.TrimRight(r.b[r.i:], " \t\r\n")) == 0
}

// parseHeartbeatAnswer reads {"token":"…","expires_at":"…"} into out.
func parseHeartbeatAnswer(b []byte, out *api.HeartbeatResponse) bool {
	r := answerReader{b: b}
	var prevText []byte
	var prev time.Time
	if !r.lit("{") {
		return false
	}
	tok, at, ok := r.lease(&prevText, &prev)
	if !ok || !r.end() {
		return false
	}
	*out = api.HeartbeatResponse{Token: tok, ExpiresAt: at}
	return true
}

// parseBatchAnswer reads a batch's answer in which every heartbeat renewed
// ({"results":[{"token":"…","expires_at":"…"},…]}) into out; any other
// answer, such as one with an error, is left to encoding/json.
func parseBatchAnswer(b []byte, out *api.BatchHeartbeatResponse, sent int) bool {
	r := answerReader{b: b}
	if !r.lit(`{"results":[`) {
		return false
	}
	results := make([]api.BatchHeartbeatResult, 0, sent)
	var prevText []byte
	var prev time.Time
	for !r.lit("]}") {
		if len(results) > 0 && !r.lit(",") || !r.lit("{") {
			return false
		}
		tok, at, ok := r.lease(&prevText, &prev)
		if !ok {
			return false
		}
		results = append(results, api.BatchHeartbeatResult{Token: tok, ExpiresAt: at})
	}
	if !r.end() {
		return false
	}
	out.Results = results
	return true
}
