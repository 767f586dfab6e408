package httpapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"

	"github.com/muster-registry/muster/api"
	"github.com/muster-registry/muster/internal/registry"
	"github.com/muster-registry/muster/internal/strictjson"
)

// decode reads the request body into v strictly: unknown fields, field names
// in the wrong case, repeated keys, wrong types, out-of-range numbers and
// trailing data are refused with an error naming the problem, so a misspelt
// field never silently falls back to a default. It returns the top-level
// keys that were present, so a handler can tell "absent" from "zero".
func decode(r *http.Request, v any) (map[string]bool, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, readError(err)
	}
	return decodeBody(body, v)
}

// readError is the answer to a request body that could not be read.
func readError(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return tooLarge(mbe.Limit)
	}
	return badRequest("reading the request body: %v", err)
}

// decodeBody is decode of a body already read.
func decodeBody(body []byte, v any) (map[string]bool, error) {
	if bytes.Equal(bytes.TrimSpace(body), []byte("null")) {
		// encoding/json would leave v as it is: a body of {}.
		return nil, invalidJSON("the body must be a JSON object, not null")
	}
	present, err := strictjson.Check(body, reflect.TypeOf(v))
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return nil, decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, invalidJSON("trailing data after the JSON value")
	}
	return present, nil
}

func decodeError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return invalidJSON("the request body is empty; a JSON object is required")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return invalidJSON("the JSON value ends early")
	case errors.As(err, &syn):
		return invalidJSON("syntax error at byte %d: %v", syn.Offset, syn)
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return invalidJSON("the body must be a JSON object, not %s", typ.Value)
		}
		return registry.Invalid(field, "must be %s, not %s", describeType(typ.Type.String()), typ.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return registry.Invalid(field, "unknown field")
	default:
		return invalidJSON("%v", err)
	}
}

func describeType(t string) string {
	switch {
	case strings.HasPrefix(t, "int"), strings.HasPrefix(t, "*int"):
		return "an integer in range"
	case strings.HasPrefix(t, "bool"), strings.HasPrefix(t, "*bool"):
		return "true or false"
	case strings.HasPrefix(t, "string"), strings.HasPrefix(t, "*string"):
		return "a string"
	case strings.HasPrefix(t, "[]"), strings.HasPrefix(t, "*[]"):
		return "a list"
	case strings.HasPrefix(t, "map"), strings.HasPrefix(t, "*map"):
		return "an object of strings"
	default:
		return "of type " + t
	}
}

// query reads query parameters, refusing ones the route does not know.
type query struct {
	v url.Values
}

func parseQuery(r *http.Request, known ...string) (query, error) {
	v, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return query{}, badRequest("the query string is malformed: %v", err)
	}
	for k := range v {
		ok := false
		for _, kn := range known {
			// A known name ending in '.' admits every parameter with that prefix.
			if k == kn || (strings.HasSuffix(kn, ".") && strings.HasPrefix(k, kn) && len(k) > len(kn)) {
				ok = true
				break
			}
		}
		if !ok {
			if len(known) == 0 {
				return query{}, badRequest("unknown query parameter %q (this route takes no query parameters)", k)
			}
			return query{}, badRequest("unknown query parameter %q (this route takes: %s)", k, strings.Join(known, ", "))
		}
	}
	return query{v: v}, nil
}

// one returns a parameter that may be given at most once.
func (q query) one(name string) (string, error) {
	vs := q.v[name]
	if len(vs) > 1 {
		return "", badRequest("query parameter %q is given %d times; give it once", name, len(vs))
	}
	if len(vs) == 0 {
		return "", nil
	}
	return vs[0], nil
}

func (q query) all(name string) []string { return q.v[name] }

// uint returns an unsigned integer parameter in [lo, hi], or def when absent.
func (q query) uint(name string, def, lo, hi uint64) (uint64, error) {
	s, err := q.one(name)
	if err != nil || s == "" {
		return def, err
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, badRequest("query parameter %q must be an integer from %d to %d, not %q", name, lo, hi, s)
	}
	return n, nil
}

// page reads limit and marker.
func (q query) page() (limit int, marker string, err error) {
	l, err := q.uint("limit", api.DefaultListLimit, 1, api.MaxListLimit)
	if err != nil {
		return 0, "", err
	}
	m, err := q.one("marker")
	if err != nil || m == "" {
		return int(l), "", err
	}
	raw, err := base64.RawURLEncoding.DecodeString(m)
	if err != nil {
		return 0, "", badRequest("query parameter \"marker\" is not a marker this server gave out")
	}
	return int(l), string(raw), nil
}

// paginate returns the page of items (sorted by cmp) after marker (exclusive),
// with the marker of the next page. after(item, marker) reports whether item
// sorts after marker; key gives an item's marker.
func paginate[T any](items []T, limit int, marker string, after func(T, string) bool, key func(T) string) ([]T, *string) {
	if marker != "" {
		i := 0
		for i < len(items) && !after(items[i], marker) {
			i++
		}
		items = items[i:]
	}
	if len(items) <= limit {
		return items, nil
	}
	next := base64.RawURLEncoding.EncodeToString([]byte(key(items[limit-1])))
	return items[:limit], &next
}

func list[T any](values []T, limit int, next *string) api.List[T] {
	if values == nil {
		values = []T{}
	}
	return api.List[T]{Values: values, Metadata: api.ListMetadata{Count: len(values), Limit: limit, NextMarker: next}}
}
