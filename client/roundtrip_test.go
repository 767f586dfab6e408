package client

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
)

// TestLeanClientFollowsRedirects: the default client calls the lean
// transport itself, and an answer that redirects is sent again through
// http.Client, which follows it, with the body.
func TestLeanClientFollowsRedirects(t *testing.T) {
	var moved atomic.Int64
	mux := http.NewServeMux()
	mux.Handle("POST /v1/services/acme/web/instances/i-1/heartbeat", http.RedirectHandler("/v1/moved", http.StatusTemporaryRedirect))
	mux.HandleFunc("POST /v1/moved", func(w http.ResponseWriter, r *http.Request) {
		moved.Add(1)
		if b, _ := io.ReadAll(r.Body); string(b) != `{"token":"t-1"}` {
			http.Error(w, "body "+string(b), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"token":"t-2","expires_at":"2026-01-01T00:00:30Z"}`+"\n")
	})
	mux.Handle("GET /v1/health", http.RedirectHandler("/v1/healthy", http.StatusMovedPermanently))
	mux.Handle("GET /v1/healthy", okJSON)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	c, _ := leanClient(t, srv.URL)
	if c.lean == nil {
		t.Fatal("the default client does not call its lean transport itself")
	}
	hb, err := c.Heartbeat(t.Context(), "acme", "web", "i-1", "t-1")
	if err != nil || hb.Token != "t-2" {
		t.Fatalf("heartbeat through a redirect: %+v, %v", hb, err)
	}
	if moved.Load() != 1 {
		t.Errorf("the redirect's target got %d requests, want 1", moved.Load())
	}
	if err := c.Health(t.Context()); err != nil {
		t.Fatalf("health through a redirect: %v", err)
	}
}

// TestLeanClientErrorShape: a failed request reads as it does through
// http.Client.
func TestLeanClientErrorShape(t *testing.T) {
	srv := httptest.NewServer(okJSON)
	addr := srv.URL
	srv.Close()
	lean, _ := leanClient(t, addr)
	plain, err := New(addr, WithHTTPClient(&http.Client{}))
	if err != nil {
		t.Fatal(err)
	}
	_, leanErr := lean.Heartbeat(t.Context(), "acme", "web", "i-1", "t-1")
	_, plainErr := plain.Heartbeat(t.Context(), "acme", "web", "i-1", "t-1")
	var le, pe *url.Error
	if !errors.As(leanErr, &le) || !errors.As(plainErr, &pe) {
		t.Fatalf("not *url.Error: %v / %v", leanErr, plainErr)
	}
	if le.Op != pe.Op || le.URL != pe.URL {
		t.Errorf("lean %q %q, net/http %q %q", le.Op, le.URL, pe.Op, pe.URL)
	}
	want := `client: Post "` + addr + `/v1/services/acme/web/instances/i-1/heartbeat": `
	if !strings.HasPrefix(leanErr.Error(), want) {
		t.Errorf("error %q, want it to start %q", leanErr, want)
	}
}

// TestUserInfoAddressSendsBasicAuth: an address with user:password gets
// Basic auth, as through http.Client, and errors hide the password.
func TestUserInfoAddressSendsBasicAuth(t *testing.T) {
	var got atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Store(r.Header.Get("Authorization"))
		okJSON(w, r)
	}))
	t.Cleanup(srv.Close)
	addr := strings.Replace(srv.URL, "http://", "http://alice:secret@", 1)
	c, err := New(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	if err := c.Health(t.Context()); err != nil {
		t.Fatal(err)
	}
	if a, _ := got.Load().(string); a != "Basic YWxpY2U6c2VjcmV0" {
		t.Errorf("Authorization %q, want Basic auth of alice:secret", a)
	}
	srv.Close()
	if err := c.Health(t.Context()); err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("error %v shows the password or is missing", err)
	}
}
