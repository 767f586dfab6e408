package client

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/muster-registry/muster/api"
)

// connCounter counts a test server's connections as its ConnState hook
// sees them.
type connCounter struct {
	opened, closed atomic.Int64
}

// countedServer starts an httptest.Server that counts its connections;
// tweak, when not nil, changes the server before it starts.
func countedServer(t *testing.T, h http.Handler, tweak func(*httptest.Server)) (*httptest.Server, *connCounter) {
	t.Helper()
	var n connCounter
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			n.opened.Add(1)
		case http.StateClosed, http.StateHijacked:
			n.closed.Add(1)
		}
	}
	if tweak != nil {
		tweak(srv)
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &n
}

// leanClient is a Client of addr on its default transport, which must be
// the lean one.
func leanClient(t *testing.T, addr string, opts ...Option) (*Client, *transport) {
	t.Helper()
	c, err := New(addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	tr, ok := c.http.Transport.(*transport)
	if !ok {
		t.Fatalf("default transport of %s is %T, want the lean *transport", addr, c.http.Transport)
	}
	t.Cleanup(c.CloseIdleConnections)
	return c, tr
}

// waitFor polls cond until it holds, failing the test after 10 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(end) {
			t.Fatalf("still waiting for %s after 10s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// idleCount is how many connections tr holds idle.
func idleCount(tr *transport) int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return len(tr.idle)
}

// waitServerClosedIdle waits until tr's newest idle connection shows, to
// the probe, that its server closed it; only then is the test about what
// the transport does with such a connection, not about how fast loopback
// delivers a FIN.
func waitServerClosedIdle(t *testing.T, tr *transport) {
	t.Helper()
	waitFor(t, "the idle connection to show as closed", func() bool {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		return len(tr.idle) > 0 && !tr.idle[len(tr.idle)-1].probe.open()
	})
}

// get sends a GET through c's http.Client and answers the body read whole.
func get(t *testing.T, c *Client, u string) (*http.Response, string) {
	t.Helper()
	resp, err := c.http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		t.Fatalf("GET %s: reading the body: %v", u, err)
	}
	return resp, string(b)
}

var okJSON = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, "{}")
})

// roundTripFunc is a function as an http.RoundTripper.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestDefaultHTTPClient(t *testing.T) {
	noProxy := func(*http.Request) (*url.URL, error) { return nil, nil }
	proxy := func(*http.Request) (*url.URL, error) { return url.Parse("http://proxy.test:3128") }
	badProxy := func(*http.Request) (*url.URL, error) { return nil, errors.New("bad proxy setting") }
	tests := []struct {
		name     string
		base     string
		proxy    func(*http.Request) (*url.URL, error)
		wantLean bool
	}{
		{"http without a proxy", "http://127.0.0.1:7410", noProxy, true},
		{"http on the default port", "http://muster.internal", noProxy, true},
		{"http through a proxy", "http://muster.internal:7410", proxy, false},
		{"a proxy setting that does not parse", "http://muster.internal:7410", badProxy, false},
		{"https", "https://muster.internal", noProxy, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := url.Parse(tt.base)
			if err != nil {
				t.Fatal(err)
			}
			wantLean := tt.wantLean && canProbe // without the probe: net/http's
			switch tr := newHTTPClient(u, tt.proxy).Transport.(type) {
			case *transport:
				if !wantLean {
					t.Fatalf("got the lean transport, want net/http's")
				}
				if tr.host != u.Host || (u.Port() == "" && !strings.HasSuffix(tr.addr, ":80")) {
					t.Errorf("serves %q dialing %q", tr.host, tr.addr)
				}
			case *http.Transport:
				if wantLean {
					t.Fatalf("got net/http's transport, want the lean one")
				}
				if tr.MaxIdleConnsPerHost != maxIdleConns || tr.Proxy == nil {
					t.Errorf("MaxIdleConnsPerHost = %d, Proxy set %v: want %d and net/http's proxy", tr.MaxIdleConnsPerHost, tr.Proxy != nil, maxIdleConns)
				}
			default:
				t.Fatalf("transport %T", tr)
			}
		})
	}

	// A program that replaced http.DefaultTransport (a mock, a tracing
	// wrapper) keeps getting it, as a plain http.Client would.
	saved := http.DefaultTransport
	http.DefaultTransport = roundTripFunc(func(*http.Request) (*http.Response, error) { return nil, errors.New("mock") })
	u, _ := url.Parse("http://127.0.0.1:7410")
	replaced := newHTTPClient(u, noProxy)
	http.DefaultTransport = saved
	if replaced.Transport != nil {
		t.Errorf("with http.DefaultTransport replaced, the default client's transport is %T, want nil (the replacement)", replaced.Transport)
	}

	hc := &http.Client{}
	c, err := New("http://127.0.0.1:7410", WithHTTPClient(hc))
	if err != nil {
		t.Fatal(err)
	}
	if c.http != hc {
		t.Error("WithHTTPClient's client was replaced")
	}
}

// TestTransportKeepsConnections runs rounds of concurrent requests that the
// server holds until all of a round have arrived, so each round needs as
// many connections as requests: every round after the first must find them
// all idle (net/http's default transport keeps 2).
func TestTransportKeepsConnections(t *testing.T) {
	const workers, rounds = 16, 5
	var mu sync.Mutex
	arrived, release := 0, make(chan struct{})
	srv, conns := countedServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		arrived++
		ch := release
		if arrived == workers {
			arrived = 0
			close(release)
			release = make(chan struct{})
		}
		mu.Unlock()
		select {
		case <-ch:
			okJSON(w, r)
		case <-r.Context().Done():
		}
	}), nil)
	c, tr := leanClient(t, srv.URL)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for range rounds {
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for range workers {
			wg.Go(func() { errs <- c.Health(ctx) })
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	if n := conns.opened.Load(); n != workers {
		t.Errorf("%d rounds of %d concurrent requests opened %d connections, want %d", rounds, workers, n, workers)
	}
	if n := idleCount(tr); n != workers {
		t.Errorf("%d idle connections, want %d", n, workers)
	}
}

// TestTransportServerClosesIdleConnections: a connection the server closed
// while it was idle is not used again, so even a POST, which is never
// retried once written, succeeds on a new one.
func TestTransportServerClosesIdleConnections(t *testing.T) {
	if !canProbe {
		t.Skip("this platform cannot probe an idle connection")
	}
	t.Run("idle timeout", func(t *testing.T) {
		srv, conns := countedServer(t, okJSON, func(s *httptest.Server) { s.Config.IdleTimeout = 50 * time.Millisecond })
		c, tr := leanClient(t, srv.URL)
		for i := range 3 {
			if _, err := c.Heartbeat(t.Context(), "acme", "web", "i1", "t"); err != nil {
				t.Fatalf("heartbeat %d: %v", i, err)
			}
			waitFor(t, "the server to close the idle connection", func() bool { return conns.closed.Load() == int64(i+1) })
			waitServerClosedIdle(t, tr)
		}
		if n := conns.opened.Load(); n != 3 {
			t.Errorf("%d connections, want 3", n)
		}
	})
	t.Run("closed after each answer, unannounced", func(t *testing.T) {
		srv := newRawServer(t, func(s *rawServer, nc net.Conn, br *bufio.Reader, _ int) {
			if _, ok := s.read(br); ok {
				_, _ = io.WriteString(nc, rawOK)
			}
		})
		c, tr := leanClient(t, srv.url)
		for i := range 4 {
			var err error
			if i%2 == 0 {
				_, err = c.Heartbeat(t.Context(), "acme", "web", "i1", "t")
			} else {
				_, err = c.PutInstance(t.Context(), "acme", "web", "i1", api.RegisterInstanceRequest{Address: "10.0.0.1", Port: 80})
			}
			if err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
			waitServerClosedIdle(t, tr)
		}
		if got := srv.requests(); len(got) != 4 {
			t.Errorf("server saw %v, want 4 requests", got)
		}
	})
}

// TestTransportConnectionClose: an answer that says Connection: close ends
// its connection; it is never pooled.
func TestTransportConnectionClose(t *testing.T) {
	srv, conns := countedServer(t, okJSON, func(s *httptest.Server) { s.Config.SetKeepAlivesEnabled(false) })
	c, tr := leanClient(t, srv.URL)
	for i := range 3 {
		if _, err := c.Heartbeat(t.Context(), "acme", "web", "i1", "t"); err != nil {
			t.Fatalf("heartbeat %d: %v", i, err)
		}
		if n := idleCount(tr); n != 0 {
			t.Fatalf("%d idle connections after an answer with Connection: close", n)
		}
	}
	if n := conns.opened.Load(); n != 3 {
		t.Errorf("%d connections, want 3", n)
	}
}

// rawServer is a TCP server that misbehaves as a test says: serve runs on
// each accepted connection (numbered from 0), which is closed when it
// returns.
type rawServer struct {
	url  string
	n    atomic.Int64
	mu   sync.Mutex
	seen []string // "METHOD /path" of each request read
}

func newRawServer(t *testing.T, serve func(s *rawServer, nc net.Conn, br *bufio.Reader, conn int)) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{url: "http://" + ln.Addr().String()}
	var wg sync.WaitGroup
	var open sync.Map // net.Conn → struct{}
	wg.Go(func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			i := int(s.n.Add(1)) - 1
			open.Store(nc, struct{}{})
			wg.Go(func() {
				defer open.Delete(nc)
				defer func() { _ = nc.Close() }()
				serve(s, nc, bufio.NewReader(nc), i)
			})
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		open.Range(func(k, _ any) bool { _ = k.(net.Conn).Close(); return true })
		wg.Wait()
	})
	return s
}

// read reads one whole request and records it; ok is false when the
// connection ended first.
func (s *rawServer) read(br *bufio.Reader) (*http.Request, bool) {
	req, err := http.ReadRequest(br)
	if err != nil {
		return nil, false
	}
	_, _ = io.Copy(io.Discard, req.Body)
	s.mu.Lock()
	s.seen = append(s.seen, req.Method+" "+req.URL.Path)
	s.mu.Unlock()
	return req, true
}

func (s *rawServer) requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.seen...)
}

func (s *rawServer) conns() int { return int(s.n.Load()) }

// rawOK is a complete answer with a JSON body.
const rawOK = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"

// TestTransportRetries: the server reads a second request on a connection
// it has answered once, then closes it without answering. As net/http
// does, the transport sends the request again on a new connection only
// when it is idempotent; a write is never sent twice.
func TestTransportRetries(t *testing.T) {
	type opaque struct{ io.Reader } // a body without GetBody
	tests := []struct {
		name      string
		method    string
		body      io.Reader
		header    http.Header
		wantRetry bool
	}{
		{"GET", http.MethodGet, nil, nil, true},
		{"HEAD", http.MethodHead, nil, nil, true},
		{"OPTIONS", http.MethodOptions, nil, nil, true},
		{"PUT", http.MethodPut, strings.NewReader(`{"port":1}`), nil, false},
		{"POST", http.MethodPost, strings.NewReader(`{"token":"t"}`), nil, false},
		{"POST without a body", http.MethodPost, nil, nil, false},
		{"PATCH", http.MethodPatch, strings.NewReader(`{}`), nil, false},
		{"DELETE", http.MethodDelete, nil, nil, false},
		{"POST with an Idempotency-Key", http.MethodPost, strings.NewReader(`{}`), http.Header{"Idempotency-Key": {"k1"}}, true},
		{"GET with a body that cannot be replayed", http.MethodGet, opaque{strings.NewReader(`{}`)}, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newRawServer(t, func(s *rawServer, nc net.Conn, br *bufio.Reader, conn int) {
				for i := 0; ; i++ {
					if _, ok := s.read(br); !ok || (conn == 0 && i == 1) {
						return // the second request on the first connection: no answer
					}
					_, _ = io.WriteString(nc, rawOK)
				}
			})
			c, _ := leanClient(t, srv.url)
			if err := c.Health(t.Context()); err != nil {
				t.Fatal(err)
			}
			req, err := http.NewRequestWithContext(t.Context(), tt.method, srv.url+"/v1/x", tt.body)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.header {
				req.Header[k] = v
			}
			resp, err := c.http.Do(req)
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
			}
			want := []string{"GET /v1/health", tt.method + " /v1/x"}
			if tt.wantRetry {
				want = append(want, tt.method+" /v1/x")
				if err != nil {
					t.Errorf("err = %v, want the request retried on a new connection", err)
				}
			} else if err == nil {
				t.Error("the request succeeded: it was sent again")
			}
			if got := srv.requests(); !slices.Equal(got, want) {
				t.Errorf("the server read %q, want %q", got, want)
			}
		})
	}

	t.Run("not on a new connection", func(t *testing.T) {
		srv := newRawServer(t, func(s *rawServer, nc net.Conn, br *bufio.Reader, conn int) {
			if _, ok := s.read(br); ok && conn > 0 {
				_, _ = io.WriteString(nc, rawOK)
			}
		})
		c, _ := leanClient(t, srv.url)
		if err := c.Health(t.Context()); err == nil {
			t.Error("a GET whose new connection closed without an answer succeeded")
		}
		if got := srv.requests(); len(got) != 1 || srv.conns() != 1 {
			t.Errorf("the server read %q on %d connections, want one request on one", got, srv.conns())
		}
	})
}

func TestRetryable(t *testing.T) {
	written := errors.New("connection reset")
	tests := []struct {
		name    string
		method  string
		body    bool // a body with GetBody
		opaque  bool // a body without GetBody
		idemKey string
		err     error
		want    bool
	}{
		{"nothing written, no body", http.MethodPost, false, false, "", nothingWrittenError{io.EOF}, true},
		{"nothing written, a replayable body", http.MethodPut, true, false, "", nothingWrittenError{io.EOF}, true},
		{"nothing written, a body that cannot be replayed", http.MethodPut, false, true, "", nothingWrittenError{io.EOF}, false},
		{"no answer to a GET", http.MethodGet, false, false, "", noAnswerError{io.EOF}, true},
		{"no answer to a HEAD", http.MethodHead, false, false, "", noAnswerError{io.EOF}, true},
		{"no answer to a TRACE", http.MethodTrace, false, false, "", noAnswerError{io.EOF}, true},
		{"no answer to a POST", http.MethodPost, true, false, "", noAnswerError{io.EOF}, false},
		{"no answer to a PUT", http.MethodPut, true, false, "", noAnswerError{io.EOF}, false},
		{"no answer to a DELETE", http.MethodDelete, false, false, "", noAnswerError{io.EOF}, false},
		{"no answer to a POST with Idempotency-Key", http.MethodPost, true, false, "Idempotency-Key", noAnswerError{io.EOF}, true},
		{"no answer to a POST with X-Idempotency-Key", http.MethodPost, true, false, "X-Idempotency-Key", noAnswerError{io.EOF}, true},
		{"no answer to a GET with a body that cannot be replayed", http.MethodGet, false, true, "", noAnswerError{io.EOF}, false},
		{"a partial write of a GET", http.MethodGet, false, false, "", fmt.Errorf("writing request: %w", written), false},
		{"an answer cut short", http.MethodGet, false, false, "", fmt.Errorf("reading answer: %w", io.ErrUnexpectedEOF), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader
			switch {
			case tt.body:
				body = strings.NewReader("x")
			case tt.opaque:
				body = struct{ io.Reader }{strings.NewReader("x")}
			}
			req, err := http.NewRequest(tt.method, "http://muster.test/v1/x", body)
			if err != nil {
				t.Fatal(err)
			}
			if tt.idemKey != "" {
				req.Header[tt.idemKey] = []string{"k"}
			}
			if got := retryable(req, tt.err); got != tt.want {
				t.Errorf("retryable = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestTransportConcurrent: many goroutines share a client; each answer
// goes to its own request. Run it with -race.
func TestTransportConcurrent(t *testing.T) {
	const workers, each = 64, 40
	srv, conns := countedServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "text/plain")
		_, _ = fmt.Fprintf(w, "%s %s %s", r.Method, r.URL.Query().Get("q"), b)
	}), nil)
	c, tr := leanClient(t, srv.URL)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for g := range workers {
		wg.Go(func() {
			for i := range each {
				q := fmt.Sprintf("%d-%d", g, i)
				method, body, want := http.MethodGet, "", "GET "+q+" "
				if i%2 == 1 {
					method, body, want = http.MethodPost, "body-"+q, "POST "+q+" body-"+q
				}
				req, _ := http.NewRequestWithContext(t.Context(), method, srv.URL+"/v1/echo?q="+q, strings.NewReader(body))
				resp, err := c.http.Do(req)
				if err != nil {
					errs <- err
					return
				}
				got, err := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				if err != nil || string(got) != want {
					errs <- fmt.Errorf("answer %q, %v: want %q", got, err, want)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := conns.opened.Load(); n > workers {
		t.Errorf("%d connections for %d goroutines", n, workers)
	}
	if n := idleCount(tr); n != int(conns.opened.Load()) {
		t.Errorf("%d idle connections after the run, want all %d", n, conns.opened.Load())
	}
}

// TestTransportSlowServer: the client's timeout cuts a call that the server
// does not answer, and the connection is not reused.
func TestTransportSlowServer(t *testing.T) {
	quit := make(chan struct{}) // lets a failed test end
	srv, conns := countedServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/status" {
			select { // never answers
			case <-r.Context().Done():
			case <-quit:
			}
			return
		}
		okJSON(w, r)
	}), nil)
	t.Cleanup(func() { close(quit) })
	c, _ := leanClient(t, srv.URL, WithTimeout(2*time.Second)) // long enough for Health on a loaded machine
	if err := c.Health(t.Context()); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.Status(t.Context())
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Status() = %v, want context.DeadlineExceeded", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Status() still waiting 10s into a 2s timeout")
	}
	if err := c.Health(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := conns.opened.Load(); n != 2 {
		t.Errorf("%d connections, want 2: the timed-out one is not reused", n)
	}
}

// TestTransportIdleTimeout: a connection idle for the idle timeout is
// closed by the client, without a request to notice it.
func TestTransportIdleTimeout(t *testing.T) {
	srv, conns := countedServer(t, okJSON, nil)
	c, tr := leanClient(t, srv.URL)
	tr.idleTimeout = 50 * time.Millisecond
	for i := range 2 {
		if err := c.Health(t.Context()); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the client to close its idle connection", func() bool { return conns.closed.Load() == int64(i+1) })
	}
	if n := idleCount(tr); n != 0 {
		t.Errorf("%d idle connections left", n)
	}
}

func TestClientCloseIdleConnections(t *testing.T) {
	srv, conns := countedServer(t, okJSON, nil)
	c, tr := leanClient(t, srv.URL)
	if err := c.Health(t.Context()); err != nil {
		t.Fatal(err)
	}
	c.CloseIdleConnections()
	waitFor(t, "the server to see its connection closed", func() bool { return conns.closed.Load() == 1 })
	if err := c.Health(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n, idle := conns.opened.Load(), idleCount(tr); n != 2 || idle != 1 {
		t.Errorf("%d connections, %d idle: want 2 and 1", n, idle)
	}
}

func TestTransportSkipsInformationalAnswers(t *testing.T) {
	srv := newRawServer(t, func(s *rawServer, nc net.Conn, br *bufio.Reader, _ int) {
		for {
			if _, ok := s.read(br); !ok {
				return
			}
			_, _ = io.WriteString(nc, "HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n"+rawOK)
		}
	})
	c, _ := leanClient(t, srv.url)
	for range 2 {
		if err := c.Health(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if n := srv.conns(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}

// TestTransportRedirectElsewhere: a redirect to another origin goes through
// net/http.
func TestTransportRedirectElsewhere(t *testing.T) {
	var hits atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		okJSON(w, r)
	}))
	t.Cleanup(other.Close)
	srv, _ := countedServer(t, http.RedirectHandler(other.URL+"/v1/health", http.StatusTemporaryRedirect), nil)
	c, _ := leanClient(t, srv.URL)
	if err := c.Health(t.Context()); err != nil {
		t.Fatal(err)
	}
	if hits.Load() != 1 {
		t.Errorf("the other server got %d requests, want 1", hits.Load())
	}
}
