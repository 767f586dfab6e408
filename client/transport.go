package client

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"
)

// The default client's connections.
const (
	// maxIdleConns bounds the connections kept open between requests, by
	// the lean transport and by the net/http fallback (whose own default
	// of 2 per host makes a busy Client reconnect on most requests).
	maxIdleConns = 256
	// idleTimeout closes a connection unused this long; the server's own
	// IdleTimeout is 120 s, so the client closes first.
	idleTimeout = 90 * time.Second
	// dialTimeout and keepAlive are those of http.DefaultTransport.
	dialTimeout = 30 * time.Second
	keepAlive   = 30 * time.Second
	// maxAnswerHeader bounds an answer's status line and headers (what
	// the connection reads until they are parsed), as a net/http server's
	// http.DefaultMaxHeaderBytes bounds a request's; net/http's client
	// allows 10 MiB, far more than any Muster answer needs.
	maxAnswerHeader = 1 << 20
	// max1xx bounds the informational answers skipped before the final
	// one, as net/http does.
	max1xx = 5
	// maxDrain is the most of an unread body that Close reads, from what
	// is already buffered, to keep the connection.
	maxDrain = 4 << 10
	// readBufSize and writeBufSize size each connection's reader and the
	// pooled writers a request is written into.
	readBufSize  = 4 << 10
	writeBufSize = 8 << 10
)

// errAnswerHeaderTooLarge ends a connection whose answer's header exceeds
// maxAnswerHeader.
var errAnswerHeaderTooLarge = fmt.Errorf("client: answer header longer than %d bytes", maxAnswerHeader)

// newHTTPClient is the http.Client that New uses without WithHTTPClient.
// A program that replaced http.DefaultTransport (a mock, a tracing
// wrapper) gets it, as with a plain http.Client. Otherwise: the lean
// transport for an http:// server reached directly, where the platform can
// probe idle connections (without the probe a request on a connection the
// server closed would fail where net/http notices the close); else a clone
// of http.DefaultTransport with more idle connections. proxy is
// http.ProxyFromEnvironment outside tests.
func newHTTPClient(base *url.URL, proxy func(*http.Request) (*url.URL, error)) *http.Client {
	def, ok := http.DefaultTransport.(*http.Transport)
	if !ok {
		return &http.Client{}
	}
	if base.Scheme == "http" && canProbe {
		if p, err := proxy(&http.Request{Method: http.MethodGet, URL: base, Header: http.Header{}}); err == nil && p == nil {
			return &http.Client{Transport: newTransport(base, netHTTPTransport(def))}
		}
	}
	return &http.Client{Transport: netHTTPTransport(def)}
}

// netHTTPTransport is a clone of def that keeps up to maxIdleConns idle
// connections per host.
func netHTTPTransport(def *http.Transport) *http.Transport {
	tr := def.Clone()
	tr.MaxIdleConns = maxIdleConns
	tr.MaxIdleConnsPerHost = maxIdleConns
	return tr
}

// transport is the default client's http.RoundTripper for an http:// server
// reached without a proxy: HTTP/1.1 on the caller's goroutine, without
// net/http's per-connection goroutines and channel hand-offs. A request
// takes an idle connection (the most recently used first) or dials one,
// and is written in one flush: by hand when it is plain, as the SDK's are
// (writeRequest), else with (*http.Request).Write. Its answer is read by
// hand when its header arrived whole and is plain (parseAnswer), else
// with http.ReadResponse. The connection goes back to the pool when
// the answer's body has been read to its end, unless either side asked to
// close it. Requests for any other origin (a redirect elsewhere) go to a
// net/http fallback.
//
// Context cancellation sets a past deadline on the connection, which ends
// any read or write in progress; such a connection is never reused, and
// the request's error (or its body's) wraps ctx.Err().
//
// A request that failed on a reused connection is sent again on a new one
// under net/http's rules (Transport.shouldRetryRequest): when nothing was
// written and the body can be replayed, or when the request is idempotent
// and the connection failed before the first byte of the answer.
//
// A transport is safe for concurrent use; each connection serves one
// request at a time, owned by the goroutine that sent it until its answer
// is read or closed.
type transport struct {
	host     string // req.URL.Host of the requests it serves itself
	addr     string // host:port to dial
	dialer   net.Dialer
	fallback *http.Transport
	writers  sync.Pool // *bufio.Writer, writeBufSize

	// idleTimeout is idleTimeout, a field so tests can shorten it.
	idleTimeout time.Duration

	mu    sync.Mutex
	idle  []*conn     // oldest first; requests take from the end
	sweep *time.Timer // closes expired idle conns; nil until first needed
	armed bool        // sweep is pending
}

func newTransport(base *url.URL, fallback *http.Transport) *transport {
	port := base.Port()
	if port == "" {
		port = "80"
	}
	return &transport{
		host:        base.Host,
		addr:        net.JoinHostPort(base.Hostname(), port),
		dialer:      net.Dialer{Timeout: dialTimeout, KeepAlive: keepAlive},
		fallback:    fallback,
		idleTimeout: idleTimeout,
	}
}

// RoundTrip implements http.RoundTripper.
func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL == nil || req.URL.Scheme != "http" || req.URL.Host != t.host {
		return t.fallback.RoundTrip(req)
	}
	ctx := req.Context()
	if ctx.Err() != nil {
		closeRequestBody(req)
		return nil, ctxError(ctx)
	}
	orig := req
	for fresh := false; ; fresh = true {
		c, err := t.conn(ctx, fresh)
		if err != nil {
			closeRequestBody(req)
			return nil, err
		}
		resp, err := c.roundTrip(ctx, req)
		if err == nil {
			resp.Request = orig
			return resp, nil
		}
		if fresh || !c.reused || ctx.Err() != nil || !retryable(req, err) {
			return nil, err
		}
		if req, err = rewindBody(req); err != nil {
			return nil, err
		}
	}
}

// CloseIdleConnections closes the connections not in use now, its own and
// its fallback's. Connections in use are kept (and pooled after).
func (t *transport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = nil
	if t.sweep != nil {
		t.sweep.Stop()
		t.armed = false
	}
	t.mu.Unlock()
	for _, c := range idle {
		c.close()
	}
	t.fallback.CloseIdleConnections()
}

// conn returns a connection for one request: the newest idle one that is
// still open, or a new one when fresh is set or none is.
func (t *transport) conn(ctx context.Context, fresh bool) (*conn, error) {
	if !fresh {
		if c := t.takeIdle(); c != nil {
			return c, nil
		}
	}
	return t.dial(ctx)
}

func (t *transport) dial(ctx context.Context) (*conn, error) {
	nc, err := t.dialer.DialContext(ctx, "tcp", t.addr)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctxError(ctx)
		}
		return nil, err
	}
	c := &conn{t: t, nc: nc}
	c.br = bufio.NewReaderSize(c, readBufSize)
	c.abort = func() { _ = nc.SetDeadline(time.Unix(1, 0)) }
	c.probe.init(nc)
	return c, nil
}

// takeIdle pops idle connections, newest first, until one is fit to use:
// not idle too long and, where the platform can tell, not closed by the
// server nor holding bytes nobody asked for.
func (t *transport) takeIdle() *conn {
	for {
		t.mu.Lock()
		n := len(t.idle)
		if n == 0 {
			t.mu.Unlock()
			return nil
		}
		c := t.idle[n-1]
		t.idle[n-1] = nil
		t.idle = t.idle[:n-1]
		t.mu.Unlock()
		if time.Since(c.idleSince) < t.idleTimeout && c.probe.open() {
			c.reused = true
			return c
		}
		c.close()
	}
}

// putIdle pools c, whose last answer was read whole, or closes it when the
// pool is full or c holds bytes beyond that answer.
func (t *transport) putIdle(c *conn) {
	if c.br.Buffered() > 0 {
		c.close()
		return
	}
	t.mu.Lock()
	// Under the lock, so that the pool stays in order of age for the sweep.
	c.idleSince = time.Now()
	if len(t.idle) >= maxIdleConns {
		t.mu.Unlock()
		c.close()
		return
	}
	t.idle = append(t.idle, c)
	if !t.armed {
		t.armed = true
		if t.sweep == nil {
			t.sweep = time.AfterFunc(t.idleTimeout, t.sweepIdle)
		} else {
			t.sweep.Reset(t.idleTimeout)
		}
	}
	t.mu.Unlock()
}

// sweepIdle closes the connections idle for idleTimeout or more, so that
// a Client left alone does not hold them until the server closes them,
// and waits again for the oldest one left.
func (t *transport) sweepIdle() {
	now := time.Now()
	t.mu.Lock()
	n := 0
	for n < len(t.idle) && now.Sub(t.idle[n].idleSince) >= t.idleTimeout {
		n++
	}
	expired := slices.Clone(t.idle[:n])
	t.idle = slices.Delete(t.idle, 0, n)
	t.armed = len(t.idle) > 0
	if t.armed {
		t.sweep.Reset(t.idleTimeout - now.Sub(t.idle[0].idleSince))
	}
	t.mu.Unlock()
	for _, c := range expired {
		c.close()
	}
}

func (t *transport) getWriter(w io.Writer) *bufio.Writer {
	if bw, ok := t.writers.Get().(*bufio.Writer); ok {
		bw.Reset(w)
		return bw
	}
	return bufio.NewWriterSize(w, writeBufSize)
}

func (t *transport) putWriter(bw *bufio.Writer) {
	bw.Reset(nil)
	t.writers.Put(bw)
}

// conn is one connection of a transport.
//
// Concurrency: a conn belongs to one goroutine at a time, the one whose
// request it carries (and that request's body) or, while idle, the pool.
// Only abort, run by a context's AfterFunc, and close may come from
// elsewhere; both are safe on a net.Conn in use.
type conn struct {
	t     *transport
	nc    net.Conn
	br    *bufio.Reader // reads through conn.Read
	probe probe         // tells whether an idle conn is still usable
	abort func()        // sets a past deadline: what a cancelled context does

	stop      func() bool // stops the current request's AfterFunc
	written   int64       // bytes of the current request written to nc
	readLimit int64       // bytes Read may still return: bounds the answer's header
	reused    bool        // taken from the pool for the current request
	idleSince time.Time   // when it was last pooled
}

// Read reads from the network for br, within readLimit.
func (c *conn) Read(p []byte) (int, error) {
	if c.readLimit <= 0 {
		return 0, errAnswerHeaderTooLarge
	}
	if int64(len(p)) > c.readLimit {
		p = p[:c.readLimit]
	}
	n, err := c.nc.Read(p)
	c.readLimit -= int64(n)
	return n, err
}

// Write writes to the network for a request's writer, counting what went
// out so that a failed write can tell whether anything did.
func (c *conn) Write(p []byte) (int, error) {
	n, err := c.nc.Write(p)
	c.written += int64(n)
	return n, err
}

func (c *conn) close() { _ = c.nc.Close() }

// roundTrip sends req on c and reads the answer's header. On success the
// answer's body owns c (and returns it to the pool); on error c is closed.
func (c *conn) roundTrip(ctx context.Context, req *http.Request) (*http.Response, error) {
	if ctx.Done() == nil {
		c.stop = stopNothing // the context can never be done
	} else {
		c.stop = context.AfterFunc(ctx, c.abort)
	}
	c.written = 0
	bw := c.t.getWriter(c)
	handled, err := writeRequest(bw, req)
	if !handled {
		err = req.Write(bw)
	}
	if err == nil {
		err = bw.Flush()
	}
	c.t.putWriter(bw)
	if err != nil {
		if c.written == 0 {
			return nil, c.fail(ctx, nothingWrittenError{err})
		}
		return nil, c.fail(ctx, fmt.Errorf("writing request: %w", err))
	}
	c.readLimit = maxAnswerHeader
	if _, err := c.br.Peek(1); err != nil {
		return nil, c.fail(ctx, noAnswerError{err})
	}
	// The header usually comes whole in the first read. parseAnswer takes
	// it from the buffer when it is all there and plain; else nothing has
	// been consumed and ReadResponse reads it from the start.
	var resp *http.Response
	buffered, _ := c.br.Peek(c.br.Buffered())
	a, n, ok := parseAnswer(buffered, req.Method)
	if ok {
		_, _ = c.br.Discard(n)
		resp = &a.resp
		resp.Request = req
	} else if resp, err = c.readAnswer(req); err != nil {
		return nil, c.fail(ctx, err)
	}
	c.readLimit = math.MaxInt64
	keep := !resp.Close && !req.Close
	switch {
	case resp.StatusCode == http.StatusSwitchingProtocols:
		// The SDK never asks to switch protocols: the answer has no body
		// and the connection is not used again.
		resp.Body = http.NoBody
		c.release(false)
	case resp.Body == http.NoBody:
		c.release(keep)
	case ok:
		a.body.ctx, a.body.c, a.body.keep = ctx, c, keep
		a.body.lr.br = c.br // parseAnswer set the length
		a.body.src = &a.body.lr
		resp.Body = &a.body
	default:
		resp.Body = &body{ctx: ctx, c: c, src: resp.Body, keep: keep}
	}
	return resp, nil
}

// readAnswer reads an answer with http.ReadResponse, skipping up to max1xx
// informational ones: for what parseAnswer leaves to it.
func (c *conn) readAnswer(req *http.Request) (*http.Response, error) {
	for n := 0; ; n++ {
		resp, err := http.ReadResponse(c.br, req)
		if err != nil {
			return nil, fmt.Errorf("reading answer: %w", err)
		}
		if resp.StatusCode < 100 || resp.StatusCode > 199 || resp.StatusCode == http.StatusSwitchingProtocols {
			return resp, nil
		}
		if n == max1xx {
			return nil, fmt.Errorf("reading answer: more than %d 1xx answers", max1xx)
		}
	}
}

// fail closes c after a failed request and returns the error to report:
// the context's when it is done (its AfterFunc may be what failed the
// call), else err.
func (c *conn) fail(ctx context.Context, err error) error {
	c.stop()
	c.close()
	if ctx.Err() != nil {
		return ctxError(ctx)
	}
	return err
}

// release ends c's request, whose answer has been read whole: c goes back
// to the pool when keep is set and the request's context has not fired
// (which leaves a past deadline on c), and is closed otherwise.
func (c *conn) release(keep bool) {
	if c.stop() && keep {
		c.t.putIdle(c)
		return
	}
	c.close()
}

// body is an answer's body on a transport's connection. It hands the
// connection back when read to its end, and closes it when closed early
// (unless the little that is left is already buffered).
//
// Concurrency: Read is called by one goroutine at a time; Close may be
// called concurrently with Read, and then ends the Read in progress.
type body struct {
	ctx  context.Context
	c    *conn
	src  io.Reader    // &lr, or the body http.ReadResponse made (never closed: it would drain)
	lr   lengthReader // the body of an answer parseAnswer read
	keep bool         // neither side asked to close the connection

	mu      sync.Mutex
	reading bool  // a Read is using src
	done    bool  // the connection has been handed back or closed
	closed  bool  // Close was called
	err     error // what Read returns once done
}

// Read implements io.Reader.
func (b *body) Read(p []byte) (int, error) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return 0, http.ErrBodyReadAfterClose
	}
	if b.done {
		err := b.err
		b.mu.Unlock()
		return 0, err
	}
	b.reading = true
	b.mu.Unlock()

	n, err := b.src.Read(p)

	b.mu.Lock()
	defer b.mu.Unlock()
	b.reading = false
	switch {
	case b.done: // Close ended the read
		return n, http.ErrBodyReadAfterClose
	case err == io.EOF:
		b.done, b.err = true, io.EOF
		b.c.release(b.keep)
	case err != nil:
		b.done = true
		b.c.stop()
		b.c.close()
		if b.ctx.Err() != nil {
			err = ctxError(b.ctx)
		}
		b.err = err
	}
	return n, err
}

// Close implements io.Closer. The connection is kept only if the rest of
// the body, at most maxDrain bytes, is already buffered.
func (b *body) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	if b.done {
		return nil
	}
	b.done = true
	if b.reading || !b.c.stop() || !b.keep || !b.drain() {
		b.c.stop()
		b.c.close()
		return nil
	}
	b.c.t.putIdle(b.c)
	return nil
}

// drain reads the rest of the body from what is already buffered, without
// waiting for the network, and reports whether it reached the end. Its
// caller has stopped the request's AfterFunc, so the deadline is its own.
func (b *body) drain() bool {
	if b.c.br.Buffered() == 0 {
		return false
	}
	if err := b.c.nc.SetReadDeadline(time.Unix(1, 0)); err != nil {
		return false
	}
	n, err := io.CopyN(io.Discard, b.src, maxDrain+1)
	if err != io.EOF || n > maxDrain {
		return false
	}
	return b.c.nc.SetReadDeadline(time.Time{}) == nil
}

// nothingWrittenError is a request that failed before any byte of it
// reached the connection.
type nothingWrittenError struct{ err error }

func (e nothingWrittenError) Error() string { return "writing request: " + e.err.Error() }
func (e nothingWrittenError) Unwrap() error { return e.err }

// noAnswerError is a request, written whole, whose connection failed
// before the first byte of an answer.
type noAnswerError struct{ err error }

func (e noAnswerError) Error() string { return "reading answer: " + e.err.Error() }
func (e noAnswerError) Unwrap() error { return e.err }

// retryable reports whether req, which failed with err on a reused
// connection, may be sent again on a new one. These are net/http's rules
// (Transport.shouldRetryRequest): a server may close an idle connection
// just as a request goes out on it, and then nothing of the request was
// processed; but once a request has been written, only an idempotent one
// may be sent twice.
func retryable(req *http.Request, err error) bool {
	var nw nothingWrittenError
	if errors.As(err, &nw) {
		return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	}
	var na noAnswerError
	return errors.As(err, &na) && replayable(req)
}

// replayable is net/http's (*Request).isReplayable: idempotent by method
// or by an Idempotency-Key header, with a body that can be sent again.
func replayable(req *http.Request) bool {
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		return false
	}
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	_, ok := req.Header["Idempotency-Key"]
	_, okX := req.Header["X-Idempotency-Key"]
	return ok || okX
}

// rewindBody returns req with a new copy of its body, for a retry.
func rewindBody(req *http.Request) (*http.Request, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return req, nil
	}
	body, err := req.GetBody()
	if err != nil {
		return nil, fmt.Errorf("rewinding the body for a retry: %w", err)
	}
	r := *req
	r.Body = body
	return &r, nil
}

// closeRequestBody closes the body of a request never written, as a
// RoundTripper must.
func closeRequestBody(req *http.Request) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
}

// stopNothing is the stop of a request whose context cannot be done.
func stopNothing() bool { return true }

// ctxError is the error of a request cut short by its context: ctx.Err(),
// and the cancellation cause too when one was given.
func ctxError(ctx context.Context) error {
	err := ctx.Err()
	if cause := context.Cause(ctx); cause != nil && cause != err {
		return fmt.Errorf("%w: %w", cause, err)
	}
	return err
}
