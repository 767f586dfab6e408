// Package client is the Go SDK of Muster's HTTP API (v1).
//
// A [Client] has one typed method per route: revisions, selection policies
// and resolution, instances, services, the events feed, URL maps and node
// status. Every method takes a
// [context.Context] first and returns an [*APIError] for any answer that is not
// 2xx, which matches sentinel errors such as [ErrNotFound] with [errors.Is].
//
// On top of the routes sit three long-running helpers:
//
//   - [Heartbeater] registers an instance and keeps it alive: it heartbeats at
//     about a third of the instance's timeout, rides out server restarts,
//     re-registers an instance that expired, and deregisters on shutdown.
//   - [Watcher] keeps a local, always-current list of one service's passing
//     instances: it lists them once and then follows the events feed, so reads
//     need no round trip.
//   - [Resolver] keeps the resolutions of one service for a set of callers
//     (which revision the service's policy picks for each, and its passing
//     instances) current the same way, resolving again when an event of the
//     service can change an answer.
//
// # Indexes
//
// Every List… and Get… method returns, next to its value, the answer's
// [Index]: the id of the newest event that the answer reflects (the
// X-Muster-Index header). Following the events feed with After set to that
// index sees every change made after the read, and none twice. The Watcher is
// built on exactly this.
//
// # Timeouts
//
// [WithTimeout] bounds each ordinary call (30 seconds by default). A long poll
// ([Client.Events] with Wait set) gets that timeout plus its wait, and
// [Client.StreamEvents] is bounded by its context only. A [http.Client] given
// with [WithHTTPClient] must not set its own Timeout shorter than the longest
// long poll, or it will cut watches short.
//
// # Connections
//
// Without [WithHTTPClient], a Client of an http:// server that
// [http.ProxyFromEnvironment] sends directly (no proxy, as for 127.0.0.1
// and localhost) uses its own lean HTTP/1.1 transport, on Linux, macOS,
// the BSDs and Solaris (where it can check that an idle connection is still
// open before reusing it): each request runs on the calling goroutine over
// a pooled keep-alive connection, without net/http's per-connection
// goroutines. It keeps up to 256 idle connections, closes one idle for 90
// seconds, and honours the request's context. A request that failed on a
// reused connection is sent once more, on a new one, under net/http's
// rules: when nothing of it was written and its body can be sent again,
// or when it is idempotent (GET, HEAD, OPTIONS, TRACE, or an
// Idempotency-Key or X-Idempotency-Key header) and no byte of an answer
// came. The Client calls that transport itself, not through http.Client;
// an answer that redirects (which a Muster server never sends, but a proxy
// in front of it may) is sent again through http.Client, which follows
// it. Any other server (https, through a proxy, or on another platform)
// gets a clone of [http.DefaultTransport] that keeps up to 256 idle
// connections per host, instead of its default 2. A program that replaced
// http.DefaultTransport with something else (a mock, a tracing wrapper)
// gets that, as a plain http.Client would. [Client.CloseIdleConnections]
// releases the idle connections.
//
// A Client is safe for concurrent use by any number of goroutines.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/muster-registry/muster/api"
)

// DefaultTimeout is the per-request timeout of ordinary calls unless
// [WithTimeout] says otherwise.
const DefaultTimeout = 30 * time.Second

// DefaultUserAgent is the User-Agent header sent unless [WithUserAgent] says
// otherwise.
const DefaultUserAgent = "muster-go-client/1"

// maxErrorBody bounds how much of an error answer is read: error bodies are
// small, and a misbehaving proxy must not make the client buffer a page.
const maxErrorBody = 64 << 10

// Index is the id of the newest event that an answer reflects (the
// X-Muster-Index header). Zero means the answer carried no index, or that no
// event has happened yet. Pass it as [EventQuery.After] to follow the changes
// made after the read.
type Index uint64

// Client talks to one Muster server. It is safe for concurrent use; its
// configuration does not change after [New].
type Client struct {
	base      string // scheme://host[/prefix]/v1, no trailing slash
	http      *http.Client
	token     string
	userAgent string
	timeout   time.Duration
	bodies    bodyPool // buffers of answers decoded by a fast path
	// lean is http's transport when it is the SDK's own lean one, which
	// send then calls itself; nil with WithHTTPClient or a net/http one.
	lean *transport
	// headers assigned to every request as they are (never appended to)
	accept, acceptStream, jsonType, agent, auth []string
}

// Option configures a [Client] in [New].
type Option func(*Client)

// WithHTTPClient makes the client send its requests through hc (for its
// transport, proxy or TLS settings). Without it, see "Connections" in the
// package documentation for the default.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) {
		if hc != nil {
			c.http = hc
		}
	}
}

// WithToken sends "Authorization: Bearer token" with every request.
func WithToken(token string) Option {
	return func(c *Client) { c.token = token }
}

// WithUserAgent replaces [DefaultUserAgent].
func WithUserAgent(ua string) Option {
	return func(c *Client) { c.userAgent = ua }
}

// WithTimeout sets the per-request timeout of ordinary calls; zero or less
// disables it, leaving only the caller's context. Long polls get this timeout
// plus their wait; event streams are not bounded by it.
func WithTimeout(d time.Duration) Option {
	return func(c *Client) { c.timeout = max(d, 0) }
}

// New returns a client of the server at addr, such as "http://127.0.0.1:7410".
// An addr without a scheme is taken as http; an addr with a path (a server
// behind a reverse proxy under a prefix) keeps it. The client appends /v1.
func New(addr string, opts ...Option) (*Client, error) {
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil {
		return nil, fmt.Errorf("client: bad address %q: %w", addr, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("client: bad address %q: scheme must be http or https", addr)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("client: bad address %q: no host", addr)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("client: bad address %q: no query or fragment allowed", addr)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	c := &Client{
		base:      u.String() + "/v1",
		userAgent: DefaultUserAgent,
		timeout:   DefaultTimeout,
	}
	for _, opt := range opts {
		opt(c)
	}
	if c.http == nil {
		c.http = newHTTPClient(u, http.ProxyFromEnvironment)
		// Only without user:password in the address: http.Client turns
		// that into Basic auth and hides the password in errors.
		if u.User == nil {
			c.lean, _ = c.http.Transport.(*transport)
		}
	}
	c.accept, c.acceptStream, c.jsonType = []string{"application/json"}, []string{"text/event-stream"}, []string{"application/json"}
	if c.userAgent != "" {
		c.agent = []string{c.userAgent}
	}
	if c.token != "" {
		c.auth = []string{"Bearer " + c.token}
	}
	return c, nil
}

// CloseIdleConnections closes the connections that the client keeps open
// between requests and is not using now. Requests in flight keep theirs;
// later requests open new ones. Call it when done with a Client to release
// its connections at once instead of when they time out. With
// [WithHTTPClient] it closes the idle connections of that http.Client's
// transport, which other clients may share.
func (c *Client) CloseIdleConnections() {
	c.http.CloseIdleConnections()
}

// request is one call: what to send and how to read the answer.
type request struct {
	method string
	path   string // under /v1, already escaped
	query  url.Values
	header http.Header
	body   any           // encoded as JSON when not nil
	out    any           // decoded from a 2xx body when not nil
	extra  time.Duration // added to the client's timeout (long polls)
	// respHeader, when not nil, receives the headers of a 2xx answer.
	respHeader *http.Header
	// raw, when not nil, is the body already encoded, sent instead of body.
	raw []byte
	// fast, when not nil, decodes a 2xx body read whole, and reports false
	// to leave the body to encoding/json (into out) instead. It must not
	// keep a reference to body, whose buffer is reused.
	fast func(body []byte) bool
}

// do sends r and decodes its answer into r.out. It returns the answer's
// index (zero when the header is absent).
func (c *Client) do(ctx context.Context, r request) (Index, error) {
	// A caller's deadline sooner than the timeout already bounds the call
	// (WithTimeout would return an equivalent context), without a timer.
	if d, ok := ctx.Deadline(); c.timeout > 0 && (!ok || time.Until(d) > c.timeout+r.extra) {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout+r.extra)
		defer cancel()
	}
	resp, err := c.send(ctx, r, "application/json")
	if err != nil {
		return 0, err
	}
	defer closeBody(resp)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return 0, readAPIError(resp)
	}
	idx, err := parseIndex(resp.Header)
	if err != nil {
		return 0, err
	}
	if r.respHeader != nil {
		*r.respHeader = resp.Header
	}
	if r.out != nil && resp.StatusCode != http.StatusNoContent {
		if err := c.decodeAnswer(resp, r); err != nil {
			return 0, fmt.Errorf("client: %s %s: decoding answer: %w", r.method, r.path, err)
		}
	}
	return idx, nil
}

// decodeAnswer decodes a 2xx body into r.out, by r.fast when it can.
func (c *Client) decodeAnswer(resp *http.Response, r request) error {
	if r.fast == nil {
		return decodeWhole(resp.Body, r.out)
	}
	buf, err := c.readBody(resp)
	defer c.bodies.put(buf)
	if err != nil {
		return err
	}
	if r.fast(*buf) {
		return nil
	}
	return decodeWhole(bytes.NewReader(*buf), r.out)
}

// decodeWhole decodes the one JSON value body holds into v; anything after
// it but white space is an error, as the fast paths and json.Unmarshal
// have it, so an answer decodes the same on either path.
func decodeWhole(body io.Reader, v any) error {
	dec := json.NewDecoder(body)
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data after the JSON value")
	}
	return nil
}

// readBody reads the whole body into a buffer of c.bodies, in one read
// into a buffer of the right size when the length is known.
func (c *Client) readBody(resp *http.Response) (*[]byte, error) {
	buf := c.bodies.get(resp.ContentLength)
	b := *buf
	if n := resp.ContentLength; n > 0 && n <= maxPooledBody {
		b = b[:n]
		_, err := io.ReadFull(resp.Body, b)
		*buf = b
		return buf, err
	}
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := resp.Body.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			*buf = b
			return buf, nil
		}
		if err != nil {
			*buf = b
			return buf, err
		}
	}
}

// maxPooledBody bounds the buffers kept for reuse, and the buffer
// allocated up front from a Content-Length.
const maxPooledBody = 4 << 20

// bodyPool recycles the buffers that answers decoded by a fast path are
// read into. Those decoders copy what they keep, so a buffer is free again
// once the answer is decoded.
type bodyPool struct{ p sync.Pool }

// get returns an empty buffer, with room for n bytes when n is known.
func (p *bodyPool) get(n int64) *[]byte {
	buf, _ := p.p.Get().(*[]byte)
	if buf == nil {
		buf = new([]byte)
	}
	if n > 0 && n <= maxPooledBody && int64(cap(*buf)) < n {
		*buf = make([]byte, 0, n)
	}
	*buf = (*buf)[:0]
	return buf
}

func (p *bodyPool) put(buf *[]byte) {
	if cap(*buf) > maxPooledBody {
		return
	}
	p.p.Put(buf)
}

// send builds and sends the request; the caller owns the response body.
// Transport errors come back wrapped, so errors.Is(err, context.Canceled)
// and errors.As(err, new(*url.Error)) keep working.
func (c *Client) send(ctx context.Context, r request, accept string) (*http.Response, error) {
	var body io.Reader
	if r.raw != nil {
		body = bytes.NewReader(r.raw)
	} else if r.body != nil {
		b, err := json.Marshal(r.body)
		if err != nil {
			return nil, fmt.Errorf("client: %s %s: encoding request: %w", r.method, r.path, err)
		}
		body = bytes.NewReader(b)
	}
	target := c.base + r.path
	if len(r.query) > 0 {
		target += "?" + r.query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, r.method, target, body)
	if err != nil {
		return nil, fmt.Errorf("client: %s %s: %w", r.method, r.path, err)
	}
	for k, vs := range r.header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	// The client's own headers are assigned, canonical keys and shared
	// values, rather than Set: this is on every request.
	switch accept {
	case "application/json":
		req.Header["Accept"] = c.accept
	case "text/event-stream":
		req.Header["Accept"] = c.acceptStream
	default:
		req.Header.Set("Accept", accept)
	}
	if body != nil {
		req.Header["Content-Type"] = c.jsonType
	}
	if c.agent != nil {
		req.Header["User-Agent"] = c.agent
	}
	if c.auth != nil {
		req.Header["Authorization"] = c.auth
	}
	resp, err := c.roundTrip(req)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	return resp, nil
}

// roundTrip sends req. Through the lean transport it calls the transport
// itself, skipping what http.Client does per request for redirects (a copy
// of the headers, ~5 % of a heartbeat's client CPU): a Muster server never
// redirects, and an answer that does (a proxy in front of it sending
// http:// to https://) is sent again through http.Client, which follows
// it (so the first hop goes out twice). Errors have http.Client's form.
// An address with user:password never comes here (see New).
func (c *Client) roundTrip(req *http.Request) (*http.Response, error) {
	if c.lean == nil {
		return c.http.Do(req)
	}
	resp, err := c.lean.RoundTrip(req)
	if err != nil {
		return nil, &url.Error{Op: req.Method[:1] + strings.ToLower(req.Method[1:]), URL: req.URL.String(), Err: err}
	}
	if !isRedirect(resp.StatusCode) || resp.Header.Get("Location") == "" {
		return resp, nil
	}
	if req.Body != nil && req.Body != http.NoBody {
		if req.GetBody == nil {
			return resp, nil // cannot be sent again: the redirect is the answer
		}
		body, err := req.GetBody()
		if err != nil {
			closeBody(resp)
			return nil, &url.Error{Op: req.Method[:1] + strings.ToLower(req.Method[1:]), URL: req.URL.String(), Err: err}
		}
		req.Body = body
	}
	closeBody(resp)
	return c.http.Do(req)
}

// isRedirect reports whether http.Client follows an answer of this status.
func isRedirect(status int) bool {
	switch status {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

// closeBody drains a little of the body so the connection can be reused,
// then closes it.
func closeBody(resp *http.Response) {
	_, _ = io.CopyN(io.Discard, resp.Body, 4<<10)
	_ = resp.Body.Close()
}

// parseIndex reads X-Muster-Index; an absent header is index 0, a malformed
// one an error (a server that writes garbage there cannot be followed).
func parseIndex(h http.Header) (Index, error) {
	v := h.Get(api.HeaderIndex)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("client: malformed %s header %q: %w", api.HeaderIndex, v, err)
	}
	return Index(n), nil
}

// escapePath fills each {} of route with the next segment, escaped with
// url.PathEscape. Empty, "." and ".." segments are refused: the server would
// either not route them or clean them into another path.
func escapePath(route string, segments ...string) (string, error) {
	if n := strings.Count(route, "{}"); n != len(segments) {
		return "", fmt.Errorf("%w: route %s takes %d segments, not %d", ErrInvalidArgument, route, n, len(segments))
	}
	size := len(route)
	for _, s := range segments {
		size += len(s) // more if escaped: the builder grows
	}
	var b strings.Builder
	b.Grow(size)
	rest := route
	for _, s := range segments {
		if s == "" || s == "." || s == ".." {
			return "", fmt.Errorf("%w: path segment %q", ErrInvalidArgument, s)
		}
		i := strings.Index(rest, "{}")
		b.WriteString(rest[:i])
		b.WriteString(url.PathEscape(s))
		rest = rest[i+2:]
	}
	b.WriteString(rest)
	return b.String(), nil
}

// setInt adds key=n to q unless n is zero, so the server's default applies.
func setInt(q url.Values, key string, n int) {
	if n != 0 {
		q.Set(key, strconv.Itoa(n))
	}
}

// setString adds key=s to q unless s is empty.
func setString(q url.Values, key, s string) {
	if s != "" {
		q.Set(key, s)
	}
}
