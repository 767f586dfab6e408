package client

import (
	"errors"
	"net/http"
	"testing"

	"github.com/muster-registry/muster/api"
)

func TestAPIErrors(t *testing.T) {
	sentinels := []error{
		ErrNotFound, ErrConflict, ErrInstanceExists, ErrTokenMismatch, ErrEventsCompacted,
		ErrValidation, ErrBadRequest, ErrUnauthorized, ErrForbidden, ErrRateLimited, ErrUnavailable,
	}
	typed := func(typ string) string {
		return `{"error":"Something.","type":"` + typ + `","details":"field x","request_id":"req-body"}`
	}
	tests := []struct {
		name        string
		status      int
		body        string
		wantIs      error // nil: matches no sentinel
		wantType    string
		wantMessage string
		wantReqID   string
	}{
		{"not_found", 404, typed(api.ErrNotFound), ErrNotFound, api.ErrNotFound, "Something.", "req-body"},
		{"conflict", 409, typed(api.ErrConflict), ErrConflict, api.ErrConflict, "Something.", "req-body"},
		{"instance_exists is not a bare conflict", 409, typed(api.ErrInstanceExists), ErrInstanceExists, api.ErrInstanceExists, "Something.", "req-body"},
		{"token_mismatch", 409, typed(api.ErrTokenMismatch), ErrTokenMismatch, api.ErrTokenMismatch, "Something.", "req-body"},
		{"events_compacted", 410, typed(api.ErrEventsCompacted), ErrEventsCompacted, api.ErrEventsCompacted, "Something.", "req-body"},
		{"validation_failed", 400, typed(api.ErrValidationFailed), ErrValidation, api.ErrValidationFailed, "Something.", "req-body"},
		{"bad_request", 400, typed(api.ErrBadRequest), ErrBadRequest, api.ErrBadRequest, "Something.", "req-body"},
		{"invalid_json", 400, typed(api.ErrInvalidJSON), ErrBadRequest, api.ErrInvalidJSON, "Something.", "req-body"},
		{"unauthorized", 401, typed(api.ErrUnauthorized), ErrUnauthorized, api.ErrUnauthorized, "Something.", "req-body"},
		{"forbidden", 403, typed(api.ErrForbidden), ErrForbidden, api.ErrForbidden, "Something.", "req-body"},
		{"rate_limited", 429, typed(api.ErrRateLimited), ErrRateLimited, api.ErrRateLimited, "Something.", "req-body"},
		{"unavailable", 503, typed(api.ErrUnavailable), ErrUnavailable, api.ErrUnavailable, "Something.", "req-body"},
		{"internal matches nothing", 500, typed(api.ErrInternal), nil, api.ErrInternal, "Something.", "req-body"},
		{"the type wins over the status", 400, typed(api.ErrNotFound), ErrNotFound, api.ErrNotFound, "Something.", "req-body"},
		{"request id from the header", 404, `{"error":"Gone.","type":"not_found"}`, ErrNotFound, api.ErrNotFound, "Gone.", "req-header"},
		{"proxy page: by status", 502, "<html><body>Bad   gateway</body></html>", ErrUnavailable, "", "Bad Gateway", "req-header"},
		{"text 404: by status", 404, "404 page not found\n", ErrNotFound, "", "Not Found", "req-header"},
		{"empty 409: by status", 409, "", ErrConflict, "", "Conflict", "req-header"},
		{"JSON of another shape", 418, `{"message":"teapot"}`, nil, "", "I'm a teapot", "req-header"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newMemClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set(api.HeaderRequestID, "req-header")
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			}))
			err := c.Health(t.Context())
			var ae *APIError
			if !errors.As(err, &ae) {
				t.Fatalf("err = %v (%T), want an *APIError", err, err)
			}
			if ae.StatusCode != tt.status || ae.Type != tt.wantType || ae.Message != tt.wantMessage || ae.RequestID != tt.wantReqID {
				t.Errorf("got %+v, want status %d, type %q, message %q, request id %q", ae, tt.status, tt.wantType, tt.wantMessage, tt.wantReqID)
			}
			for _, s := range sentinels {
				if got := errors.Is(err, s); got != (s == tt.wantIs) {
					t.Errorf("errors.Is(err, %v) = %v", s, got)
				}
			}
		})
	}
}

func TestAPIErrorMessage(t *testing.T) {
	tests := []struct {
		err  APIError
		want string
	}{
		{APIError{StatusCode: 404, Type: "not_found", Message: "Service revision not found.", Details: "acme/web has no default revision", RequestID: "r1"},
			"client: 404 not_found: Service revision not found. (acme/web has no default revision) [request r1]"},
		{APIError{StatusCode: 502, Message: "Bad Gateway"}, "client: 502: Bad Gateway"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

func TestProxyPageDetailsAreShortAndOnOneLine(t *testing.T) {
	long := make([]byte, 5000)
	for i := range long {
		long[i] = 'x'
	}
	if got := snippet(append([]byte("a\n\tb  "), long...)); len(got) > 210 || got[:4] != "a b " {
		t.Errorf("snippet = %q (%d bytes)", got[:20], len(got))
	}
}

func TestStatusOfType(t *testing.T) {
	tests := map[string]int{
		api.ErrBadRequest: 400, api.ErrInvalidJSON: 400, api.ErrValidationFailed: 400,
		api.ErrUnauthorized: 401, api.ErrForbidden: 403, api.ErrNotFound: 404, api.ErrMethodNotAllowed: 405,
		api.ErrConflict: 409, api.ErrInstanceExists: 409, api.ErrTokenMismatch: 409,
		api.ErrEventsCompacted: 410, api.ErrRequestTooLarge: 413, api.ErrRateLimited: 429,
		api.ErrInternal: 500, api.ErrUnavailable: 503, "something_new": 0,
	}
	for typ, want := range tests {
		if got := statusOfType(typ); got != want {
			t.Errorf("statusOfType(%q) = %d, want %d", typ, got, want)
		}
	}
}
