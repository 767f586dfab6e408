package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/muster-registry/muster/api"
)

// Sentinel errors. An [*APIError] matches one with [errors.Is] when the
// server's stable error type is the one named; an answer without a type (not
// the error shape, say from a proxy) matches by its status code instead, as
// noted on each. The sentinels themselves are never returned bare.
var (
	// ErrNotFound: type not_found (status 404).
	ErrNotFound = errors.New("client: not found")
	// ErrConflict: type conflict (status 409 without a type).
	ErrConflict = errors.New("client: conflict")
	// ErrInstanceExists: type instance_exists, the id is live.
	ErrInstanceExists = errors.New("client: instance exists")
	// ErrTokenMismatch: type token_mismatch, a heartbeat token that is spent,
	// foreign or made up; another process may hold the instance id.
	ErrTokenMismatch = errors.New("client: token mismatch")
	// ErrEventsCompacted: type events_compacted (status 410), the events
	// after the asked id are no longer held; list again and follow from the
	// list's index.
	ErrEventsCompacted = errors.New("client: events compacted")
	// ErrValidation: type validation_failed; Details names the field.
	ErrValidation = errors.New("client: validation failed")
	// ErrBadRequest: types bad_request and invalid_json (status 400).
	ErrBadRequest = errors.New("client: bad request")
	// ErrUnauthorized: type unauthorized (status 401).
	ErrUnauthorized = errors.New("client: unauthorized")
	// ErrForbidden: type forbidden (status 403).
	ErrForbidden = errors.New("client: forbidden")
	// ErrRateLimited: type rate_limited (status 429).
	ErrRateLimited = errors.New("client: rate limited")
	// ErrUnavailable: type unavailable (statuses 502, 503 and 504).
	ErrUnavailable = errors.New("client: unavailable")
)

// ErrInvalidArgument is returned, wrapped, for a call refused before anything
// was sent, such as an empty namespace.
var ErrInvalidArgument = errors.New("client: invalid argument")

// APIError is an answer with a status outside 2xx. Type, Message, Details and
// RequestID come from the api.Error body; when the body is not that shape,
// Type is empty, Message is the status text and Details holds the start of
// the body.
type APIError struct {
	StatusCode int
	Type       string
	Message    string
	Details    string
	RequestID  string
}

// Error formats the error as "client: 404 not_found: message (details) [request id]".
func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "client: %d", e.StatusCode)
	if e.Type != "" {
		b.WriteString(" " + e.Type)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.Details != "" {
		b.WriteString(" (" + e.Details + ")")
	}
	if e.RequestID != "" {
		b.WriteString(" [request " + e.RequestID + "]")
	}
	return b.String()
}

// Is reports whether target is the sentinel of e's type (or, without a
// type, of its status code); see the sentinel errors.
func (e *APIError) Is(target error) bool {
	t := e.Type
	if t == "" {
		t = typeOfStatus(e.StatusCode)
	}
	switch target {
	case ErrNotFound:
		return t == api.ErrNotFound
	case ErrConflict:
		return t == api.ErrConflict
	case ErrInstanceExists:
		return t == api.ErrInstanceExists
	case ErrTokenMismatch:
		return t == api.ErrTokenMismatch
	case ErrEventsCompacted:
		return t == api.ErrEventsCompacted
	case ErrValidation:
		return t == api.ErrValidationFailed
	case ErrBadRequest:
		return t == api.ErrBadRequest || t == api.ErrInvalidJSON
	case ErrUnauthorized:
		return t == api.ErrUnauthorized
	case ErrForbidden:
		return t == api.ErrForbidden
	case ErrRateLimited:
		return t == api.ErrRateLimited
	case ErrUnavailable:
		return t == api.ErrUnavailable
	}
	return false
}

// typeOfStatus is the error type that an untyped answer of this status
// stands for.
func typeOfStatus(code int) string {
	switch code {
	case http.StatusBadRequest:
		return api.ErrBadRequest
	case http.StatusUnauthorized:
		return api.ErrUnauthorized
	case http.StatusForbidden:
		return api.ErrForbidden
	case http.StatusNotFound:
		return api.ErrNotFound
	case http.StatusConflict:
		return api.ErrConflict
	case http.StatusGone:
		return api.ErrEventsCompacted
	case http.StatusTooManyRequests:
		return api.ErrRateLimited
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return api.ErrUnavailable
	}
	return ""
}

// statusOfType is the status code that answers carry with this error type
// (DESIGN.md §2); 0 for a type it does not know.
func statusOfType(t string) int {
	switch t {
	case api.ErrBadRequest, api.ErrInvalidJSON, api.ErrValidationFailed:
		return http.StatusBadRequest
	case api.ErrUnauthorized:
		return http.StatusUnauthorized
	case api.ErrForbidden:
		return http.StatusForbidden
	case api.ErrNotFound:
		return http.StatusNotFound
	case api.ErrMethodNotAllowed:
		return http.StatusMethodNotAllowed
	case api.ErrConflict, api.ErrInstanceExists, api.ErrTokenMismatch:
		return http.StatusConflict
	case api.ErrEventsCompacted:
		return http.StatusGone
	case api.ErrRequestTooLarge:
		return http.StatusRequestEntityTooLarge
	case api.ErrRateLimited:
		return http.StatusTooManyRequests
	case api.ErrUnavailable:
		return http.StatusServiceUnavailable
	case api.ErrInternal:
		return http.StatusInternalServerError
	}
	return 0
}

// readAPIError turns a non-2xx answer into an *APIError. It reads at most
// maxErrorBody bytes.
func readAPIError(resp *http.Response) *APIError {
	e := &APIError{StatusCode: resp.StatusCode, RequestID: resp.Header.Get(api.HeaderRequestID)}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var body api.Error
	if err := json.Unmarshal(raw, &body); err == nil && (body.Type != "" || body.Error != "") {
		e.Type, e.Message, e.Details = body.Type, body.Error, body.Details
		if body.RequestID != "" {
			e.RequestID = body.RequestID
		}
		return e
	}
	e.Message = http.StatusText(resp.StatusCode)
	e.Details = snippet(raw)
	return e
}

// snippet is the start of a body that is not the error shape, on one line.
func snippet(raw []byte) string {
	const limit = 200
	s := strings.Join(strings.Fields(string(raw)), " ")
	if len(s) > limit {
		s = s[:limit] + "…"
	}
	return strings.ToValidUTF8(s, "")
}

// isTransient reports whether a failed call may succeed if tried again
// unchanged: no answer at all, an answer the server could not give right now
// (5xx), or a rate limit. Callers check their own context first: a call cut
// by it looks like a transport error.
func isTransient(err error) bool {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.StatusCode >= 500 || ae.StatusCode == http.StatusTooManyRequests
	}
	return !errors.Is(err, ErrInvalidArgument)
}
