package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/muster-registry/muster/api"
)

// Answers' bodies on the lean transport: chunked, streamed and cancelled,
// closed early, and absent. The helpers are in transport_test.go.

func TestTransportChunkedAnswer(t *testing.T) {
	parts := []string{`{"node_id":`, `"n1",`, `"role":"leader"}`}
	srv, conns := countedServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		for _, p := range parts {
			_, _ = io.WriteString(w, p)
			w.(http.Flusher).Flush() // each part its own chunk
		}
	}), nil)
	c, _ := leanClient(t, srv.URL)
	resp, body := get(t, c, srv.URL+"/v1/status")
	if want := strings.Join(parts, ""); body != want || len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" {
		t.Errorf("body %q, transfer encoding %v: want %q, chunked", body, resp.TransferEncoding, want)
	}
	st, err := c.Status(t.Context())
	if err != nil || st.NodeID != "n1" {
		t.Fatalf("Status() = %+v, %v", st, err)
	}
	if n := conns.opened.Load(); n != 1 {
		t.Errorf("%d connections, want one reused after a chunked answer", n)
	}
}

// TestTransportCancelStream: cancelling the context of a streamed answer
// ends the read in progress with the context's error, and the connection
// is not reused.
func TestTransportCancelStream(t *testing.T) {
	handlerDone := make(chan struct{}, 2)
	quit := make(chan struct{}) // lets a failed test end
	srv, conns := countedServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/health" {
			okJSON(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		writeSSEEvent(w, 1, api.EventInstanceJoin, `{"id":1,"type":"instance.join"}`)
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done(): // the client went away
			handlerDone <- struct{}{}
		case <-quit:
		}
	}), nil)
	t.Cleanup(func() { close(quit) })
	c, _ := leanClient(t, srv.URL)

	t.Run("StreamEvents", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		done := make(chan error, 1)
		go func() {
			done <- c.StreamEvents(ctx, EventQuery{}, func(api.Event) error { cancel(); return nil })
		}()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("StreamEvents() = %v, want context.Canceled", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("StreamEvents still blocked 10s after its context was cancelled")
		}
		handlerEnded(t, handlerDone)
	})

	t.Run("body read", func(t *testing.T) {
		ctx, cancel := context.WithCancelCause(t.Context())
		defer cancel(nil)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v1/events", nil)
		resp, err := c.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		if _, err := resp.Body.Read(make([]byte, 512)); err != nil {
			t.Fatal(err)
		}
		stopped := errors.New("stopped by the test")
		go cancel(stopped)
		read := make(chan error, 1)
		go func() {
			_, err := resp.Body.Read(make([]byte, 512))
			read <- err
		}()
		select {
		case err = <-read:
		case <-time.After(10 * time.Second):
			t.Fatal("the body's Read still blocked 10s after its context was cancelled")
		}
		if !errors.Is(err, context.Canceled) || !errors.Is(err, stopped) {
			t.Errorf("read after cancel: %v, want context.Canceled and the cause", err)
		}
		handlerEnded(t, handlerDone)
	})

	if err := c.Health(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := conns.opened.Load(); n != 3 {
		t.Errorf("%d connections, want 3: the cancelled streams' were not reused", n)
	}
}

// TestTransportCancelledAfterAnswer: a context cancelled after the answer
// arrived, while its body is read from the buffer, still retires the
// connection (its AfterFunc has run, or is about to, and sets a deadline).
func TestTransportCancelledAfterAnswer(t *testing.T) {
	srv, _ := countedServer(t, okJSON, nil)
	c, tr := leanClient(t, srv.URL)
	ctx, cancel := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v1/health", nil)
	resp, err := c.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if b, err := io.ReadAll(resp.Body); err != nil || string(b) != "{}" {
		t.Fatalf("body %q, %v: the buffered body should read whole", b, err)
	}
	_ = resp.Body.Close()
	if n := idleCount(tr); n != 0 {
		t.Errorf("%d idle connections: the cancelled request's was pooled", n)
	}
	if err := c.Health(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// TestTransportCloseBeforeEOF: a body closed early keeps its connection
// only when the rest of it was already read off the network.
func TestTransportCloseBeforeEOF(t *testing.T) {
	tests := []struct {
		name      string
		size      int
		wantConns int64
	}{
		{"a large rest is not read", 256 << 10, 2},
		{"a small buffered rest is drained", 100, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			payload := bytes.Repeat([]byte("0123456789abcdef"), tt.size/16)
			srv, conns := countedServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/v1/health" {
					okJSON(w, r)
					return
				}
				w.Header().Set("Content-Length", fmt.Sprint(len(payload)))
				_, _ = w.Write(payload)
			}), nil)
			c, _ := leanClient(t, srv.URL)
			resp, err := c.http.Get(srv.URL + "/v1/big")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(resp.Body, make([]byte, 10)); err != nil {
				t.Fatal(err)
			}
			if err := resp.Body.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := resp.Body.Read(make([]byte, 1)); !errors.Is(err, http.ErrBodyReadAfterClose) {
				t.Errorf("read after Close: %v", err)
			}
			if _, body := get(t, c, srv.URL+"/v1/big"); body != string(payload) {
				t.Errorf("the next answer's body is %d bytes, want the %d of the payload", len(body), len(payload))
			}
			if n := conns.opened.Load(); n != tt.wantConns {
				t.Errorf("%d connections, want %d", n, tt.wantConns)
			}
		})
	}
}

// TestTransportAnswersWithoutBody: an answer that cannot have a body hands
// its connection back at once, even if the caller never closes the body.
func TestTransportAnswersWithoutBody(t *testing.T) {
	tests := []struct {
		name   string
		method string
		status int
		length string // Content-Length
	}{
		{"HEAD", http.MethodHead, http.StatusOK, "5"},
		{"204", http.MethodDelete, http.StatusNoContent, ""},
		{"304", http.MethodGet, http.StatusNotModified, ""},
		{"Content-Length 0", http.MethodGet, http.StatusOK, "0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, conns := countedServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/v1/health" {
					okJSON(w, r)
					return
				}
				if tt.length != "" {
					w.Header().Set("Content-Length", tt.length)
				}
				w.WriteHeader(tt.status)
			}), nil)
			c, _ := leanClient(t, srv.URL)
			req, _ := http.NewRequestWithContext(t.Context(), tt.method, srv.URL+"/v1/x", nil)
			resp, err := c.http.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			// The body is neither read nor closed.
			if err := c.Health(t.Context()); err != nil {
				t.Fatal(err)
			}
			if n := conns.opened.Load(); n != 1 {
				t.Errorf("%d connections, want the first one reused", n)
			}
		})
	}
}

// handlerEnded waits, in real time and at most 10 s, for a handler to say
// it has returned (recv's bound is made for synctest bubbles).
func handlerEnded(t *testing.T, done <-chan struct{}) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the handler did not return within 10s of the cancel")
	}
}

// TestTransportReadsPlainAnswersByHand: a plain answer is read by
// parseAnswer, and its connection goes back to the pool as soon as the
// last byte of its body is read (the body says io.EOF with it), before any
// further Read or Close; a chunked one is left to http.ReadResponse.
func TestTransportReadsPlainAnswersByHand(t *testing.T) {
	srv, conns := countedServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/chunked" {
			_, _ = io.WriteString(w, "ab")
			w.(http.Flusher).Flush()
			_, _ = io.WriteString(w, "cd")
			return
		}
		okJSON(w, r)
	}), nil)
	c, tr := leanClient(t, srv.URL)
	for i := range 3 {
		resp, err := c.http.Get(srv.URL + "/v1/health")
		if err != nil {
			t.Fatal(err)
		}
		b, ok := resp.Body.(*body)
		if !ok || b.src != io.Reader(&b.lr) {
			t.Fatalf("answer %d: body %T not read by hand", i, resp.Body)
		}
		buf := make([]byte, resp.ContentLength)
		if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "{}" {
			t.Fatalf("body %q, %v", buf, err)
		}
		if n := idleCount(tr); n != 1 {
			t.Fatalf("%d idle connections once the body was read whole, want 1", n)
		}
		_ = resp.Body.Close()
	}
	resp, text := get(t, c, srv.URL+"/v1/chunked")
	if b, ok := resp.Body.(*body); !ok || b.src == io.Reader(&b.lr) || text != "abcd" {
		t.Errorf("chunked answer: body %T, %q: want ReadResponse's body, \"abcd\"", resp.Body, text)
	}
	if n := conns.opened.Load(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}

// TestTransportRequestsLeftToNetHTTP: requests writeRequest does not write
// by hand reach the server whole through req.Write.
func TestTransportRequestsLeftToNetHTTP(t *testing.T) {
	type seen struct {
		te      []string
		close   bool
		body    string
		trailer string
	}
	got := make(chan seen, 1)
	srv, _ := countedServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.TransferEncoding, r.Close, string(b), r.Trailer.Get("X-Sum")}
		okJSON(w, r)
	}), nil)
	c, _ := leanClient(t, srv.URL)
	type opaque struct{ io.Reader } // no length, no GetBody
	tests := []struct {
		name   string
		change func(*http.Request)
		want   seen
	}{
		{"unknown length: chunked", func(r *http.Request) {
			r.Body, r.ContentLength, r.GetBody = io.NopCloser(opaque{strings.NewReader("hello")}), 0, nil
		}, seen{te: []string{"chunked"}, body: "hello"}},
		{"Close", func(r *http.Request) { r.Close = true }, seen{close: true, body: "hello"}},
		{"Trailer", func(r *http.Request) {
			r.Body, r.ContentLength, r.GetBody = io.NopCloser(opaque{strings.NewReader("hello")}), -1, nil
			r.Trailer = http.Header{"X-Sum": {"42"}}
		}, seen{te: []string{"chunked"}, body: "hello", trailer: "42"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/v1/x", strings.NewReader("hello"))
			if err != nil {
				t.Fatal(err)
			}
			tt.change(req)
			resp, err := c.http.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			closeBody(resp)
			s := <-got
			if !slices.Equal(s.te, tt.want.te) || s.close != tt.want.close || s.body != tt.want.body || s.trailer != tt.want.trailer {
				t.Errorf("the server saw %+v, want %+v", s, tt.want)
			}
		})
	}
}
