package httpapi

import (
	"net/http"

	"github.com/muster-registry/muster/api"
)

// Registration bodies are small and regular: the SDK sends them as
// encoding/json writes api.RegisterInstanceRequest: compact, the fields in
// their declared order, the empty ones left out (every field is omitempty),
// metadata keys sorted. parseRegistration reads that form by hand when every
// string is plain ASCII and every number a small positive integer; any other
// body goes through decodeRegistration, which reads that form the same way,
// so the fast path changes no answer, only its cost (TestRegistrationBody*
// and FuzzRegistrationBody hold it to the strict decoder).

// registrationBody reads the body of a registration into buf (reused from
// the handler's pool) and returns the request it holds.
func registrationBody(r *http.Request, buf *[]byte) (api.RegisterInstanceRequest, error) {
	body, err := readBody(r, (*buf)[:0])
	*buf = body
	if err != nil {
		return api.RegisterInstanceRequest{}, err
	}
	return readRegistration(body)
}

// readRegistration reads a registration body already read: by hand in the
// form the SDK sends, else strictly decoded. A heartbeat_timeout present in
// the hand-read form is never 0, so explicitTimeout has nothing to refuse
// there.
func readRegistration(body []byte) (api.RegisterInstanceRequest, error) {
	if req, ok := parseRegistration(body); ok {
		return req, nil
	}
	return decodeRegistration(body)
}

// decodeRegistration strictly decodes a registration body, refusing an
// explicit "heartbeat_timeout": 0.
func decodeRegistration(body []byte) (api.RegisterInstanceRequest, error) {
	var req api.RegisterInstanceRequest
	present, err := decodeBody(body, &req)
	if err != nil {
		return api.RegisterInstanceRequest{}, err
	}
	if err := explicitTimeout(present, req); err != nil {
		return api.RegisterInstanceRequest{}, err
	}
	return req, nil
}

// The fields of api.RegisterInstanceRequest in the order encoding/json
// writes them.
const (
	regID = iota
	regRevisionTag
	regAddress
	regPort
	regPublicURL
	regEndpoints
	regTags
	regMetadata
	regHeartbeatTimeout
)

// registrationField is the place of a JSON field name in that order; -1
// for a name that is not a field's (in another case, for one).
func registrationField(name []byte) int {
	switch string(name) {
	case "id":
		return regID
	case "revision_tag":
		return regRevisionTag
	case "address":
		return regAddress
	case "port":
		return regPort
	case "public_url":
		return regPublicURL
	case "endpoints":
		return regEndpoints
	case "tags":
		return regTags
	case "metadata":
		return regMetadata
	case "heartbeat_timeout":
		return regHeartbeatTimeout
	}
	return -1
}

// parseRegistration reads a registration body in the compact form the SDK
// sends; ok is false for any other form. Every field is optional, but the
// fields that are present come in their declared order (so none is
// repeated) with a value encoding/json would not have left out: a non-empty
// string, a list or object with at least one member, a positive integer.
func parseRegistration(body []byte) (api.RegisterInstanceRequest, bool) {
	var req api.RegisterInstanceRequest
	r := compactReader{b: trimJSONSpace(body)}
	if !r.lit("{") {
		return req, false
	}
	if r.lit("}") {
		return req, r.i == len(r.b)
	}
	last := -1
	for {
		name, ok := r.quoted()
		if !ok || !r.lit(":") {
			return api.RegisterInstanceRequest{}, false
		}
		f := registrationField(name)
		if f <= last {
			return api.RegisterInstanceRequest{}, false // unknown, repeated or out of order
		}
		last = f
		switch f {
		case regID:
			req.ID, ok = r.text()
		case regRevisionTag:
			req.RevisionTag, ok = r.text()
		case regAddress:
			req.Address, ok = r.text()
		case regPort:
			req.Port, ok = r.count()
		case regPublicURL:
			req.PublicURL, ok = r.text()
		case regEndpoints:
			req.Endpoints, ok = r.texts()
		case regTags:
			req.Tags, ok = r.texts()
		case regMetadata:
			req.Metadata, ok = r.pairs()
		case regHeartbeatTimeout:
			req.HeartbeatTimeout, ok = r.count()
		}
		if !ok {
			return api.RegisterInstanceRequest{}, false
		}
		if r.lit("}") {
			if r.i != len(r.b) {
				return api.RegisterInstanceRequest{}, false
			}
			return req, true
		}
		if !r.lit(",") {
			return api.RegisterInstanceRequest{}, false
		}
	}
}

// quoted consumes a string of plain bytes and returns them, without the
// quotes; they are the string's value.
func (r *compactReader) quoted() ([]byte, bool) {
	if !r.lit(`"`) {
		return nil, false
	}
	end, ok := plainString(r.b, r.i)
	if !ok {
		return nil, false
	}
	v := r.b[r.i:end]
	r.i = end + 1
	return v, true
}

// text consumes a non-empty plain string.
func (r *compactReader) text() (string, bool) {
	v, ok := r.quoted()
	if !ok || len(v) == 0 {
		return "", false
	}
	return string(v), true
}

// texts consumes a list of one or more plain strings (which may be empty).
func (r *compactReader) texts() ([]string, bool) {
	if !r.lit("[") {
		return nil, false
	}
	var out []string
	for {
		v, ok := r.quoted()
		if !ok {
			return nil, false
		}
		out = append(out, string(v))
		if r.lit("]") {
			return out, true
		}
		if !r.lit(",") {
			return nil, false
		}
	}
}

// pairs consumes an object of one or more plain strings whose keys are in
// increasing order, as encoding/json sorts a map's keys (which also means
// no key is repeated).
func (r *compactReader) pairs() (map[string]string, bool) {
	if !r.lit("{") {
		return nil, false
	}
	out := map[string]string{}
	var prev []byte
	for {
		k, ok := r.quoted()
		if !ok || len(out) > 0 && string(k) <= string(prev) || !r.lit(":") {
			return nil, false
		}
		v, ok := r.quoted()
		if !ok {
			return nil, false
		}
		out[string(k)] = string(v)
		prev = k
		if r.lit("}") {
			return out, true
		}
		if !r.lit(",") {
			return nil, false
		}
	}
}

// maxCountDigits bounds the integers read by hand: any int holds them.
// Ports and timeouts have at most 5 digits; longer numbers are left to the
// decoder, which names those out of range.
const maxCountDigits = 9

// count consumes a positive integer in JSON's form (no sign, no leading
// zero, no fraction or exponent) of at most maxCountDigits digits.
func (r *compactReader) count() (int, bool) {
	n, j := 0, r.i
	for ; j < len(r.b) && '0' <= r.b[j] && r.b[j] <= '9'; j++ {
		if j-r.i == maxCountDigits {
			return 0, false
		}
		n = n*10 + int(r.b[j]-'0')
	}
	if j == r.i || r.b[r.i] == '0' {
		return 0, false
	}
	r.i = j // a fraction or an exponent is refused by the caller, as neither ',' nor '}'
	return n, true
}
