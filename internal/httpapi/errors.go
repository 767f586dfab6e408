package httpapi

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/muster-registry/muster/api"
	"github.com/muster-registry/muster/internal/registry"
)

// httpError is an error that already knows its answer: the ones the HTTP
// layer itself finds (bad JSON, bad query, body too large, no route).
type httpError struct {
	status  int
	typ     string
	msg     string
	details string
}

func (e *httpError) Error() string { return e.msg + " " + e.details }

func badRequest(format string, args ...any) error {
	return &httpError{http.StatusBadRequest, api.ErrBadRequest, "Bad request.", fmt.Sprintf(format, args...)}
}

func invalidJSON(format string, args ...any) error {
	return &httpError{http.StatusBadRequest, api.ErrInvalidJSON, "The request body is not valid JSON.", fmt.Sprintf(format, args...)}
}

func tooLarge(limit int64) error {
	return &httpError{http.StatusRequestEntityTooLarge, api.ErrRequestTooLarge, "Request body too large.", fmt.Sprintf("bodies of this route are limited to %d bytes", limit)}
}

// answer is the one place where an error becomes a status, a stable type and
// a message. Unknown errors are internal: their text is logged, never shown.
func answer(err error) (status int, body api.Error, internal bool) {
	var he *httpError
	var fe *registry.FieldError
	var nf *registry.NotFoundError
	switch {
	case errors.As(err, &he):
		return he.status, api.Error{Error: he.msg, Type: he.typ, Details: he.details}, false
	case errors.As(err, &fe):
		return http.StatusBadRequest, api.Error{Error: "Validation failed.", Type: api.ErrValidationFailed, Details: fe.Error()}, false
	case errors.As(err, &nf):
		return http.StatusNotFound, api.Error{Error: "Not found.", Type: api.ErrNotFound, Details: nf.Error()}, false
	case errors.Is(err, registry.ErrNotFound):
		return http.StatusNotFound, api.Error{Error: "Not found.", Type: api.ErrNotFound}, false
	case errors.Is(err, registry.ErrInstanceExists):
		return http.StatusConflict, api.Error{Error: "Instance already registered.", Type: api.ErrInstanceExists,
			Details: "a live instance has this id; use PUT to take it over or wait for it to expire"}, false
	case errors.Is(err, registry.ErrTokenMismatch):
		return http.StatusConflict, api.Error{Error: "Token mismatch.", Type: api.ErrTokenMismatch,
			Details: "the token is not this instance's current token (spent, foreign or made up)"}, false
	case errors.Is(err, registry.ErrConflict):
		return http.StatusConflict, api.Error{Error: "Conflict.", Type: api.ErrConflict, Details: err.Error()}, false
	case errors.Is(err, registry.ErrNotLeader):
		return http.StatusServiceUnavailable, api.Error{Error: "Service unavailable.", Type: api.ErrUnavailable,
			Details: "this node is not the leader right now; retry shortly"}, false
	default:
		return http.StatusInternalServerError, api.Error{Error: "Internal error.", Type: api.ErrInternal}, true
	}
}

// writeError writes err in the API's error shape and logs internal errors
// with the request id, so the log explains what the client was not told.
func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, body, internal := answer(err)
	body.RequestID = w.Header().Get(api.HeaderRequestID)
	if internal {
		h.log.Error("request failed", "request_id", body.RequestID, "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeJSON(w, status, body)
}
