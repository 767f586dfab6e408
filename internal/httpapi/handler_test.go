package httpapi

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/muster-registry/muster/api"
	"github.com/muster-registry/muster/internal/fsm"
	"github.com/muster-registry/muster/internal/lease"
	"github.com/muster-registry/muster/internal/state"
)

type panickingProposer struct{}

func (panickingProposer) Propose(fsm.Command) (fsm.Result, error) { panic("proposer exploded") }

// A panic inside a handler becomes a 500 in the error shape with the request
// id, is logged with that id, and the handler keeps serving.
func TestPanicBecomes500(t *testing.T) {
	leases, err := lease.New(lease.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	h := New(Config{
		Store: state.New(0, leases), Leases: leases, Proposer: panickingProposer{},
		Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
	})

	req := httptest.NewRequest(http.MethodPost, "/v1/services/acme/web", strings.NewReader(`{"revision_tag":"1.0.0"}`))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)

	if rec.Code != http.StatusInternalServerError {
		t.Fatalf("status = %d, want 500", rec.Code)
	}
	var body api.Error
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("body %q is not the error shape: %v", rec.Body.String(), err)
	}
	id := rec.Header().Get(api.HeaderRequestID)
	if body.Type != api.ErrInternal || body.Error != "Internal error." || body.RequestID == "" || body.RequestID != id {
		t.Errorf("body = %+v, header request id %q", body, id)
	}
	if strings.Contains(rec.Body.String(), "exploded") {
		t.Errorf("the panic's text leaked to the client: %s", rec.Body.String())
	}
	if !strings.Contains(logs.String(), "proposer exploded") || !strings.Contains(logs.String(), id) {
		t.Errorf("log lacks the panic or the request id:\n%s", logs.String())
	}

	// The handler still serves.
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/health", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("after a panic, health = %d", rec.Code)
	}
}

// Requests that match no route get the API's error shape and only the
// headers of that shape (none of the mux's own plain-text answer); a path
// that matches a route once cleaned is still redirected.
func TestNoRoute(t *testing.T) {
	leases, err := lease.New(lease.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h := New(Config{Store: state.New(0, leases), Leases: leases})
	cases := []struct {
		name, method, path string
		status             int
		typ, allow, loc    string
	}{
		{"unknown path", http.MethodGet, "/v1/nothing", http.StatusNotFound, api.ErrNotFound, "", ""},
		{"wrong method", http.MethodDelete, "/v1/health", http.StatusMethodNotAllowed, api.ErrMethodNotAllowed, "GET, HEAD", ""},
		{"unclean path, no route", http.MethodGet, "/v1/nothing/../else", http.StatusNotFound, api.ErrNotFound, "", ""},
		{"unclean path of a route", http.MethodGet, "/v1//health", http.StatusTemporaryRedirect, "", "", "/v1/health"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
			if rec.Code != tc.status || rec.Header().Get("Allow") != tc.allow || rec.Header().Get("Location") != tc.loc {
				t.Fatalf("status %d, Allow %q, Location %q; headers %v", rec.Code, rec.Header().Get("Allow"), rec.Header().Get("Location"), rec.Header())
			}
			if tc.typ == "" {
				return
			}
			var body api.Error
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Type != tc.typ {
				t.Fatalf("body %q, %v", rec.Body.String(), err)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" || rec.Header().Get("X-Content-Type-Options") != "" {
				t.Fatalf("headers of the mux's answer leaked: %v", rec.Header())
			}
		})
	}
}
