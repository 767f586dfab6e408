package client

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// Requests written by hand (writeRequest) against (*http.Request).Write.

// wireRequest describes a request as Client.send builds them, so that two
// identical ones can be made (a body is read once).
type wireRequest struct {
	method string
	target string
	host   string // req.Host when not empty
	body   []byte // nil: no body
	header http.Header
}

func (w wireRequest) build(t tb) *http.Request {
	t.Helper()
	var body io.Reader
	if w.body != nil {
		body = bytes.NewReader(w.body)
	}
	req, err := http.NewRequest(w.method, w.target, body)
	if err != nil {
		t.Fatalf("NewRequest(%q, %q): %v", w.method, w.target, err)
	}
	if w.host != "" {
		req.Host = w.host
	}
	for k, vs := range w.header {
		req.Header[k] = append([]string(nil), vs...)
	}
	return req
}

// written is what writeRequest and req.Write write for two copies of w:
// both must have been written by hand and be byte for byte the same.
func checkWritten(t tb, w wireRequest) []byte {
	t.Helper()
	var hand, std bytes.Buffer
	bw := bufio.NewWriterSize(&hand, 64) // small: the body goes through flushes
	req := w.build(t)
	handled, err := writeRequest(bw, req)
	if !handled {
		t.Fatalf("writeRequest left %+v to req.Write", w)
	}
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		t.Fatalf("writeRequest(%+v): %v", w, err)
	}
	if err := w.build(t).Write(&std); err != nil {
		t.Fatalf("req.Write(%+v): %v", w, err)
	}
	if !bytes.Equal(hand.Bytes(), std.Bytes()) {
		t.Fatalf("for %+v, writeRequest wrote\n%q\nreq.Write wrote\n%q", w, hand.Bytes(), std.Bytes())
	}
	checkReadBack(t, hand.Bytes(), std.Bytes())
	return hand.Bytes()
}

// checkReadBack reads both requests with http.ReadRequest and compares
// what a server sees of them.
func checkReadBack(t tb, hand, std []byte) {
	t.Helper()
	read := func(b []byte) (*http.Request, []byte, error) {
		r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(b)))
		if err != nil {
			return nil, nil, err
		}
		body, err := io.ReadAll(r.Body)
		return r, body, err
	}
	got, gotBody, gotErr := read(hand)
	want, wantBody, wantErr := read(std)
	if (gotErr == nil) != (wantErr == nil) {
		t.Fatalf("ReadRequest: %v on the hand-written request, %v on req.Write's", gotErr, wantErr)
	}
	if gotErr != nil {
		return
	}
	if got.Method != want.Method || got.URL.String() != want.URL.String() || got.Host != want.Host ||
		!reflect.DeepEqual(got.Header, want.Header) || got.ContentLength != want.ContentLength ||
		!bytes.Equal(gotBody, wantBody) {
		t.Fatalf("read back: %s %s host %q %v length %d body %q; want %s %s host %q %v length %d body %q",
			got.Method, got.URL, got.Host, got.Header, got.ContentLength, gotBody,
			want.Method, want.URL, want.Host, want.Header, want.ContentLength, wantBody)
	}
}

func TestWriteRequest(t *testing.T) {
	const base = "http://127.0.0.1:7410/v1"
	sdk := http.Header{"Accept": {"application/json"}, "User-Agent": {DefaultUserAgent}}
	with := func(h http.Header, kv ...string) http.Header {
		h = h.Clone()
		for i := 0; i < len(kv); i += 2 {
			h[kv[i]] = append(h[kv[i]], kv[i+1])
		}
		return h
	}
	tests := []struct {
		name string
		req  wireRequest
		want string // the request as written, when checked literally
	}{
		{"heartbeat", wireRequest{http.MethodPost, base + "/namespaces/acme/services/web/instances/i-1/heartbeat", "", []byte(`{"token":"t"}`),
			with(sdk, "Content-Type", "application/json", "Authorization", "Bearer s3cret")},
			"POST /v1/namespaces/acme/services/web/instances/i-1/heartbeat HTTP/1.1\r\nHost: 127.0.0.1:7410\r\nUser-Agent: muster-go-client/1\r\n" +
				"Content-Length: 13\r\nAccept: application/json\r\nAuthorization: Bearer s3cret\r\nContent-Type: application/json\r\n\r\n{\"token\":\"t\"}"},
		{"lookup with a query", wireRequest{http.MethodGet, base + "/namespaces/acme/services/web/instances?status=passing&tag=a%2Bb&limit=10", "", nil, sdk},
			"GET /v1/namespaces/acme/services/web/instances?status=passing&tag=a%2Bb&limit=10 HTTP/1.1\r\nHost: 127.0.0.1:7410\r\nUser-Agent: muster-go-client/1\r\nAccept: application/json\r\n\r\n"},
		{"escaped path", wireRequest{http.MethodGet, base + "/namespaces/acme/services/we%2Fb/instances/i%20d", "", nil, sdk}, ""},
		{"empty path", wireRequest{http.MethodGet, "http://127.0.0.1:7410", "", nil, nil},
			"GET / HTTP/1.1\r\nHost: 127.0.0.1:7410\r\nUser-Agent: Go-http-client/1.1\r\n\r\n"},
		{"empty query", wireRequest{http.MethodGet, base + "/status?", "", nil, sdk}, ""},
		{"DELETE without a body", wireRequest{http.MethodDelete, base + "/x", "", nil, sdk}, ""},
		{"POST without a body", wireRequest{http.MethodPost, base + "/x", "", nil, sdk}, ""},
		{"PUT with an empty body", wireRequest{http.MethodPut, base + "/x", "", []byte{}, sdk}, ""},
		{"PATCH", wireRequest{http.MethodPatch, base + "/x", "", []byte(`{}`), sdk}, ""},
		{"HEAD", wireRequest{http.MethodHead, base + "/x", "", nil, sdk}, ""},
		{"an extension method", wireRequest{"PURGE", base + "/x", "", []byte("x"), sdk}, ""},
		{"no User-Agent: net/http's", wireRequest{http.MethodGet, base + "/x", "", nil, http.Header{}}, ""},
		{"an empty User-Agent: none", wireRequest{http.MethodGet, base + "/x", "", nil, http.Header{"User-Agent": {""}}}, ""},
		{"a blank User-Agent: an empty one", wireRequest{http.MethodGet, base + "/x", "", nil, http.Header{"User-Agent": {" \t"}}}, ""},
		{"User-Agent with CRLF and two values", wireRequest{http.MethodGet, base + "/x", "", nil, http.Header{"User-Agent": {" a\r\nb ", "second"}}}, ""},
		{"a nil User-Agent slice", wireRequest{http.MethodGet, base + "/x", "", nil, http.Header{"User-Agent": nil}}, ""},
		{"values to sanitise", wireRequest{http.MethodGet, base + "/x", "", nil,
			with(sdk, "X-Muster-Requester", "  a\r\nInjected: yes  ", "X-Muster-Requester", "\r\n", "X-Tab", "\tv\t")}, ""},
		{"names net/http leaves out", wireRequest{http.MethodGet, base + "/x", "", nil,
			with(sdk, "Bad Key", "v", "X:Y", "v", "", "v", "É", "v", "Host", "evil", "Content-Length", "99", "Transfer-Encoding", "chunked", "Trailer", "X")}, ""},
		{"keys as given", wireRequest{http.MethodGet, base + "/x", "", nil, with(sdk, "x-lower", "1", "X-lower", "2", "X-Lower", "3")}, ""},
		{"a header without values", wireRequest{http.MethodGet, base + "/x", "", nil, http.Header{"Accept": {"application/json"}, "X-Empty": {}}}, ""},
		{"Host set", wireRequest{http.MethodGet, base + "/x", "muster.internal:80", nil, sdk}, ""},
		{"IPv6 host", wireRequest{http.MethodGet, "http://[::1]:7410/v1/x", "", nil, sdk}, ""},
		{"a large body", wireRequest{http.MethodPut, base + "/x", "", bytes.Repeat([]byte("0123456789"), 2000), sdk}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := checkWritten(t, tt.req)
			if tt.want != "" && string(got) != tt.want {
				t.Errorf("wrote\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

// Requests like the SDK's, with whatever headers a caller's policy
// matches add: writeRequest takes them all and writes what req.Write
// writes.
func TestWriteRequestProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		w := wireRequest{
			method: rapid.SampledFrom([]string{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}).Draw(t, "method"),
			host:   rapid.SampledFrom([]string{"", "muster.internal", "10.0.0.1:7410", "[fe80::1]:80"}).Draw(t, "host"),
			header: http.Header{},
		}
		segs := rapid.SliceOfN(rapid.StringMatching(`[a-zA-Z0-9 /%?#é._~-]{1,8}`), 0, 4).Draw(t, "segments")
		path := "/v1"
		for _, s := range segs {
			path += "/" + url.PathEscape(s)
		}
		q := url.Values{}
		for _, k := range rapid.SliceOfN(rapid.StringMatching(`[a-z_]{1,6}`), 0, 3).Draw(t, "query keys") {
			q.Add(k, rapid.StringMatching(`[a-zA-Z0-9 &=+%*é-]{0,8}`).Draw(t, "query value"))
		}
		w.target = "http://127.0.0.1:7410" + path
		if len(q) > 0 {
			w.target += "?" + q.Encode()
		}
		if rapid.Bool().Draw(t, "has body") {
			w.body = []byte(rapid.StringN(0, 300, -1).Draw(t, "body"))
		}
		w.header.Set("Accept", rapid.SampledFrom([]string{"application/json", "text/event-stream"}).Draw(t, "accept"))
		if w.body != nil {
			w.header.Set("Content-Type", "application/json")
		}
		switch rapid.IntRange(0, 3).Draw(t, "user agent") {
		case 0:
			w.header.Set("User-Agent", DefaultUserAgent)
		case 1:
			w.header.Set("User-Agent", rapid.String().Draw(t, "custom user agent"))
		case 2: // WithUserAgent(""): net/http's default
		}
		if rapid.Bool().Draw(t, "token") {
			w.header.Set("Authorization", "Bearer "+rapid.StringMatching(`[A-Za-z0-9_.-]{0,40}`).Draw(t, "bearer"))
		}
		keys := rapid.SliceOfN(rapid.OneOf(
			rapid.StringMatching(`[A-Za-z][A-Za-z0-9-]{0,12}`),
			rapid.SampledFrom([]string{"X-Muster-Requester", "x-muster-zone", "Idempotency-Key", "Last-Event-ID", "Bad Key", "", "X:Y", "É", "User-Agent", "Host"}),
		), 0, 6).Draw(t, "extra keys")
		for _, k := range keys {
			vs := rapid.SliceOfN(rapid.OneOf(
				rapid.StringMatching(`[ -~]{0,12}`),
				rapid.SampledFrom([]string{"", " v ", "a\r\nB: c", "\t\r\n", "é", "\x00\x7f"}),
			), 0, 3).Draw(t, "values")
			if rapid.Bool().Draw(t, "added as the SDK does") {
				for _, v := range vs {
					w.header.Add(k, v) // request.header's keys go through Header.Add
				}
			} else {
				w.header[k] = vs
			}
		}
		checkWritten(t, w)
	})
}

// trackedBody is a request body that records what was done with it.
type trackedBody struct {
	r              io.Reader
	reads, closes  int
	readErr, close error
}

func (b *trackedBody) Read(p []byte) (int, error) {
	b.reads++
	if b.readErr != nil {
		return 0, b.readErr
	}
	return b.r.Read(p)
}

func (b *trackedBody) Close() error { b.closes++; return b.close }

// TestWriteRequestLeavesToNetHTTP: what writeRequest does not write by hand
// it leaves whole to req.Write, having written and read nothing.
func TestWriteRequestLeavesToNetHTTP(t *testing.T) {
	newReq := func(method string, body io.ReadCloser, length int64, replay bool) *http.Request {
		req, err := http.NewRequest(method, "http://127.0.0.1:7410/v1/x", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Body, req.ContentLength = body, length
		if replay {
			req.GetBody = func() (io.ReadCloser, error) { return body, nil }
		}
		return req
	}
	tests := []struct {
		name   string
		change func(*http.Request)
	}{
		{"Close", func(r *http.Request) { r.Close = true }},
		{"TransferEncoding", func(r *http.Request) { r.TransferEncoding = []string{"chunked"} }},
		{"Trailer", func(r *http.Request) { r.Trailer = http.Header{"X-Sum": nil} }},
		{"unknown length", func(r *http.Request) { r.ContentLength = 0 }},
		{"length -1", func(r *http.Request) { r.ContentLength = -1 }},
		{"a body that cannot be replayed", func(r *http.Request) { r.GetBody = nil }},
		{"nil body with a length", func(r *http.Request) { r.Body = nil }},
		{"CONNECT", func(r *http.Request) { r.Method = http.MethodConnect }},
		{"a method that is not a token", func(r *http.Request) { r.Method = "GET /x" }},
		{"opaque URL", func(r *http.Request) { r.URL.Opaque = "//other/x" }},
		{"control byte in the query", func(r *http.Request) { r.URL.RawQuery = "a=\n" }},
		{"a zone in the host", func(r *http.Request) { r.Host = "[fe80::1%25en0]:80" }},
		{"a non-ASCII host", func(r *http.Request) { r.Host = "bücher.example" }},
		{"a host net/http would blank", func(r *http.Request) { r.Host = "a b" }},
		{"too many header keys", func(r *http.Request) {
			for i := range maxPlainHeaderKeys + 1 {
				r.Header.Set("X-K"+strings.Repeat("a", i), "v")
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := &trackedBody{r: strings.NewReader("hello")}
			req := newReq(http.MethodPost, body, 5, true)
			tt.change(req)
			var out bytes.Buffer
			bw := bufio.NewWriter(&out)
			handled, err := writeRequest(bw, req)
			if handled || err != nil {
				t.Fatalf("writeRequest = %v, %v: want it left to req.Write", handled, err)
			}
			if bw.Buffered() != 0 || out.Len() != 0 || body.reads != 0 || body.closes != 0 {
				t.Errorf("declined after writing %d bytes, reading the body %d times, closing it %d times", bw.Buffered()+out.Len(), body.reads, body.closes)
			}
		})
	}
	// The boundary: as many keys as are sorted on the stack is plain.
	req := newReq(http.MethodGet, nil, 0, false)
	for i := range maxPlainHeaderKeys {
		req.Header.Set("X-K"+strings.Repeat("a", i), "v")
	}
	if handled, err := writeRequest(bufio.NewWriter(io.Discard), req); !handled || err != nil {
		t.Errorf("a request with %d header keys: %v, %v", maxPlainHeaderKeys, handled, err)
	}
}

// TestWriteRequestBodyErrors: a body that fails, or whose length is not
// ContentLength, fails the request as it does with req.Write; the body is
// closed either way.
func TestWriteRequestBodyErrors(t *testing.T) {
	broken := errors.New("disk on fire")
	tests := []struct {
		name              string
		content           string
		length            int64
		readErr, closeErr error
		wrapped           error // what the error must wrap; nil: any error
	}{
		{"shorter", "abc", 5, nil, nil, nil},
		{"longer", "abcdefgh", 5, nil, nil, nil},
		{"read error", "abc", 3, broken, nil, broken},
		{"close error", "abc", 3, nil, broken, broken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			newReq := func() (*http.Request, *trackedBody) {
				body := &trackedBody{r: strings.NewReader(tt.content), readErr: tt.readErr, close: tt.closeErr}
				req, err := http.NewRequest(http.MethodPost, "http://127.0.0.1:7410/v1/x", body)
				if err != nil {
					t.Fatal(err)
				}
				req.ContentLength = tt.length
				req.GetBody = func() (io.ReadCloser, error) { return nil, errors.New("not used") }
				return req, body
			}
			req, body := newReq()
			handled, err := writeRequest(bufio.NewWriter(io.Discard), req)
			if !handled || err == nil {
				t.Fatalf("writeRequest = %v, %v: want an error", handled, err)
			}
			if tt.wrapped != nil && !errors.Is(err, tt.wrapped) {
				t.Errorf("error %v does not wrap %v", err, tt.wrapped)
			}
			if body.closes != 1 {
				t.Errorf("body closed %d times, want once", body.closes)
			}
			if req, _ := newReq(); req.Write(io.Discard) == nil {
				t.Errorf("req.Write took what writeRequest refused")
			}
		})
	}
}

// TestWriteRequestAllocs: a request like a heartbeat is written without
// allocating.
func TestWriteRequestAllocs(t *testing.T) {
	body := []byte(`{"token":"tok-1"}`)
	req, err := http.NewRequest(http.MethodPost, "http://127.0.0.1:7410/v1/namespaces/acme/services/web/instances/i-1/heartbeat", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", DefaultUserAgent)
	req.Header.Set("Authorization", "Bearer tok")
	bw := bufio.NewWriter(io.Discard)
	rd := bytes.NewReader(body)
	req.Body = io.NopCloser(rd)
	allocs := testing.AllocsPerRun(100, func() {
		rd.Reset(body)
		if handled, err := writeRequest(bw, req); !handled || err != nil {
			t.Fatalf("writeRequest = %v, %v", handled, err)
		}
		_ = bw.Flush()
	})
	if allocs != 0 {
		t.Errorf("writeRequest allocates %v times per request, want 0", allocs)
	}
}

// scriptedConn is a connection whose server answers every request with
// the same bytes, without a goroutine or a socket.
type scriptedConn struct {
	net.Conn // nil: the methods the transport does not call
	answer   []byte
	pending  []byte
}

func (c *scriptedConn) Write(p []byte) (int, error) { c.pending = c.answer; return len(p), nil }
func (c *scriptedConn) Read(p []byte) (int, error) {
	if len(c.pending) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.pending)
	c.pending = c.pending[n:]
	return n, nil
}
func (c *scriptedConn) Close() error                     { return nil }
func (c *scriptedConn) SetDeadline(time.Time) error      { return nil }
func (c *scriptedConn) SetReadDeadline(time.Time) error  { return nil }
func (c *scriptedConn) SetWriteDeadline(time.Time) error { return nil }

// TestTransportRoundTripAllocs: a heartbeat's round trip on a pooled
// connection allocates only what the answer must hold (the response with
// its body, one string for the header, the header map): the request is
// written by hand and the answer read by hand. Either left to net/http
// would allocate several times more.
func TestTransportRoundTripAllocs(t *testing.T) {
	u, _ := url.Parse("http://127.0.0.1:7410")
	tr := newTransport(u, netHTTPTransport(http.DefaultTransport.(*http.Transport)))
	c := &conn{t: tr, nc: &scriptedConn{answer: []byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" +
		"Date: Mon, 02 Jan 2006 15:04:05 GMT\r\nContent-Length: 2\r\n\r\n{}")}}
	c.br = bufio.NewReaderSize(c, readBufSize)
	c.abort = func() {}
	tr.putIdle(c)
	t.Cleanup(tr.CloseIdleConnections)

	body := []byte(`{"token":"tok-1"}`)
	rd := bytes.NewReader(body)
	req, err := http.NewRequest(http.MethodPost, "http://127.0.0.1:7410/v1/namespaces/acme/services/web/instances/i-1/heartbeat", rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", DefaultUserAgent)
	reqBody := req.Body
	buf := make([]byte, 2)
	allocs := testing.AllocsPerRun(200, func() {
		rd.Reset(body)
		req.Body = reqBody
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(resp.Body, buf); err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
	})
	if idleCount(tr) != 1 {
		t.Fatal("the connection was not pooled again")
	}
	if allocs > 4 {
		t.Errorf("a round trip allocates %v times, want at most 4", allocs)
	}
}
