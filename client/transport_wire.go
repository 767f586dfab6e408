package client

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strconv"
)

// The lean transport writes the requests the SDK sends by hand, as
// (*http.Request).Write would write them, without its fmt.Fprintf, header
// sorting pool and transfer writer; any other request goes to req.Write.
// The answers are read by hand too (transport_answer.go).

// netHTTPUserAgent is the User-Agent that (*http.Request).Write sends for
// a request without one.
const netHTTPUserAgent = "Go-http-client/1.1"

// maxPlainHeaderKeys bounds the header keys of a request written by hand,
// which are sorted on the stack; a request with more goes to req.Write.
const maxPlainHeaderKeys = 32

// plainRequest is what writeRequest needs of a request it writes itself,
// checked before anything is written.
type plainRequest struct {
	method string
	host   string
	path   string // escaped; "/" for an empty path
	query  bool   // "?" and the raw query follow the path
	length int64  // of the body; 0 without one
	ua     string // the User-Agent to send, unsanitised; "" for none
	keys   [maxPlainHeaderKeys]string
	nkeys  int // keys[:nkeys] are the header keys to write, sorted
}

// writeRequest writes req into bw as (*http.Request).Write writes it: the
// same request line, Host, User-Agent (net/http's default unless the header
// has one, none if that one is empty), Content-Length (for a body, and an
// empty one for POST, PUT and PATCH), then the other header fields sorted
// by key, those with invalid names left out and values with CR and LF
// turned to spaces and trimmed, and the body. It does so for plain
// requests only: no Close, TransferEncoding or Trailer; no body, or one of
// a known length with GetBody set (as NewRequest sets it for in-memory
// readers, whose header req.Write does not flush ahead of the body either,
// as it would for a stream); an ASCII host without a zone; a URL without
// Opaque or control bytes; a token method other than CONNECT; at most
// maxPlainHeaderKeys header keys. For any other request it reports false
// having written nothing and touched nothing, and the caller uses
// req.Write.
//
// When it reports true it has closed req.Body, whatever the error, as
// req.Write does. A failed write leaves its error in bw (bufio.Writer's
// errors are sticky) and returns it; a body that fails to read, or reads
// shorter or longer than ContentLength, is an error too.
func writeRequest(bw *bufio.Writer, req *http.Request) (bool, error) {
	var p plainRequest
	if !p.plan(req) {
		return false, nil
	}
	return true, p.write(bw, req)
}

// plan fills p from req and reports whether req is plain.
func (p *plainRequest) plan(req *http.Request) bool {
	u := req.URL
	if u == nil || u.Opaque != "" || req.Close || len(req.TransferEncoding) > 0 || req.Trailer != nil {
		return false
	}
	p.method = req.Method
	if p.method == "" {
		p.method = http.MethodGet
	}
	if !isToken(p.method) || p.method == http.MethodConnect {
		return false
	}
	switch {
	case req.Body == nil:
		if req.ContentLength != 0 {
			return false // req.Write's error
		}
	case req.Body == http.NoBody:
	case req.ContentLength > 0 && req.GetBody != nil:
		p.length = req.ContentLength
	default: // unknown length (req.Write may send it chunked), or a stream
		return false
	}
	p.host = req.Host
	if p.host == "" {
		p.host = u.Host
	}
	if !plainHost(p.host) {
		return false
	}
	p.path = u.EscapedPath()
	if p.path == "" {
		p.path = "/"
	}
	p.query = u.ForceQuery || u.RawQuery != ""
	if hasCTL(p.path) || hasCTL(u.RawQuery) {
		return false // req.Write's error
	}
	p.ua = netHTTPUserAgent
	if vs, ok := req.Header["User-Agent"]; ok {
		p.ua = ""
		if len(vs) > 0 {
			p.ua = vs[0]
		}
	}
	for k := range req.Header {
		switch k {
		case "Host", "User-Agent", "Content-Length", "Transfer-Encoding", "Trailer":
			continue // written from the request's fields, or never
		}
		if !isToken(k) {
			continue // req.Write leaves invalid names out
		}
		if p.nkeys == len(p.keys) {
			return false
		}
		// Insertion sort: a request has a handful of keys.
		i := p.nkeys
		for i > 0 && p.keys[i-1] > k {
			p.keys[i] = p.keys[i-1]
			i--
		}
		p.keys[i] = k
		p.nkeys++
	}
	return true
}

// write writes the request p was planned from, and its body, into bw.
func (p *plainRequest) write(bw *bufio.Writer, req *http.Request) (err error) {
	body := req.Body
	defer func() {
		if body != nil {
			if cerr := body.Close(); err == nil {
				err = cerr
			}
		}
	}()
	_, _ = bw.WriteString(p.method)
	_ = bw.WriteByte(' ')
	_, _ = bw.WriteString(p.path)
	if p.query {
		_ = bw.WriteByte('?')
		_, _ = bw.WriteString(req.URL.RawQuery)
	}
	_, _ = bw.WriteString(" HTTP/1.1\r\nHost: ")
	_, _ = bw.WriteString(p.host)
	_, _ = bw.WriteString("\r\n")
	if p.ua != "" {
		_, _ = bw.WriteString("User-Agent: ")
		writeHeaderValue(bw, p.ua)
		_, _ = bw.WriteString("\r\n")
	}
	if p.length > 0 || p.method == http.MethodPost || p.method == http.MethodPut || p.method == http.MethodPatch {
		_, _ = bw.WriteString("Content-Length: ")
		_, _ = bw.Write(strconv.AppendInt(bw.AvailableBuffer(), p.length, 10))
		_, _ = bw.WriteString("\r\n")
	}
	for _, k := range p.keys[:p.nkeys] {
		for _, v := range req.Header[k] {
			_, _ = bw.WriteString(k)
			_, _ = bw.WriteString(": ")
			writeHeaderValue(bw, v)
			_, _ = bw.WriteString("\r\n")
		}
	}
	if _, err := bw.WriteString("\r\n"); err != nil {
		return err
	}
	if body == nil || body == http.NoBody {
		return nil
	}
	return copyBody(bw, body, p.length)
}

// copyBody writes exactly length bytes of body into bw, reading straight
// into bw's buffer, and checks that body ends there.
func copyBody(bw *bufio.Writer, body io.Reader, length int64) error {
	var n int64
	for n < length {
		if bw.Available() == 0 {
			if err := bw.Flush(); err != nil {
				return err
			}
		}
		buf := bw.AvailableBuffer()
		buf = buf[:min(int64(cap(buf)), length-n)]
		m, err := body.Read(buf)
		n += int64(m)
		if _, werr := bw.Write(buf[:m]); werr != nil {
			return werr
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("reading the request body: %w", err)
		}
	}
	// As req.Write, read what follows: a body longer than its length is
	// an error, not a request cut short.
	extra, err := io.Copy(io.Discard, body)
	if err != nil {
		return fmt.Errorf("reading the request body: %w", err)
	}
	if n+extra != length {
		return fmt.Errorf("client: ContentLength=%d with Body length %d", length, n+extra)
	}
	return nil
}

// writeHeaderValue writes v as req.Write does: with leading and trailing
// ASCII white space trimmed and any other CR or LF turned to a space, so
// that a value cannot end the header field.
func writeHeaderValue(bw *bufio.Writer, v string) {
	for len(v) > 0 && isASCIISpace(v[0]) {
		v = v[1:]
	}
	for len(v) > 0 && isASCIISpace(v[len(v)-1]) {
		v = v[:len(v)-1]
	}
	for {
		i := 0
		for i < len(v) && v[i] != '\r' && v[i] != '\n' {
			i++
		}
		_, _ = bw.WriteString(v[:i])
		if i == len(v) {
			return
		}
		_ = bw.WriteByte(' ')
		v = v[i+1:]
	}
}

func isASCIISpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// hasCTL reports whether s holds a control byte, which req.Write refuses
// in a request's URL.
func hasCTL(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] == 0x7f {
			return true
		}
	}
	return false
}

// plainHost reports whether h is a non-empty host[:port] that req.Write
// sends as it is: ASCII (no punycode conversion), without a zone or any
// percent-encoding (which it would strip from an IPv6 literal), and of the
// bytes net/http accepts in a Host header (it sends an empty one
// otherwise).
func plainHost(h string) bool {
	if h == "" {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-' || c == '.' || c == '_' || c == '~' || c == ':' || c == '[' || c == ']':
		case c == '!' || c == '$' || c == '&' || c == '\'' || c == '(' || c == ')' ||
			c == '*' || c == '+' || c == ',' || c == ';' || c == '=':
		default:
			return false
		}
	}
	return true
}

// The bytes of a token (RFC 9110, section 5.6.2), as a 128-bit map: what
// net/http accepts in a header field name.
const (
	tokenLo uint64 = 1<<'!' | 1<<'#' | 1<<'$' | 1<<'%' | 1<<'&' | 1<<'\'' | 1<<'*' | 1<<'+' |
		1<<'-' | 1<<'.' | (1<<10-1)<<'0'
	tokenHi uint64 = (1<<26-1)<<('A'-64) | 1<<('^'-64) | 1<<('_'-64) | 1<<('`'-64) |
		(1<<26-1)<<('a'-64) | 1<<('|'-64) | 1<<('~'-64)
)

func isTokenByte(c byte) bool {
	switch {
	case c < 64:
		return tokenLo>>c&1 != 0
	case c < 128:
		return tokenHi>>(c-64)&1 != 0
	}
	return false
}

// isToken reports whether s is a non-empty token.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTokenByte(s[i]) {
			return false
		}
	}
	return true
}
