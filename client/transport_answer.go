package client

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// answerVals is how many header fields an answer parsed by hand holds
// without another allocation; the server's answers have four to six.
const answerVals = 8

// maxAnswerFields bounds the header fields of an answer parsed by hand
// (they are checked for repeated keys pairwise); an answer with more is
// left to http.ReadResponse.
const maxAnswerFields = 32

// answer is what an answer parsed by hand needs, in one allocation: the
// response, its body, and the first value of each header key (a key seen
// again appends to its own slice, as textproto does).
type answer struct {
	resp http.Response
	body body
	vals [answerVals]string
}

// parseAnswer parses the status line and header at the start of b, the
// bytes a connection has buffered, when they are all there and plain: an
// HTTP/1.1 or HTTP/1.0 status line with a three-digit code of 200 or more;
// at most maxAnswerFields header fields "Key: value" with token keys,
// values of the bytes textproto allows, every line ended by CRLF, no
// folded lines; no Transfer-Encoding or Pragma; a valid Content-Length
// (repeated only with the same value) unless the answer cannot have a
// body. It returns the answer as http.ReadResponse would read it for a
// request of the method (Status, StatusCode, Proto*, Header with canonical
// keys, ContentLength, Close; Body is http.NoBody when there is none and
// nil otherwise, with ContentLength bytes to read) and the length of the
// header, which the caller consumes. Otherwise it reports false, and the
// caller leaves b to http.ReadResponse: 1xx answers, chunked ones, bodies
// that end with the connection, anything ReadResponse refuses or reads in
// another way.
//
// The header's values, and its keys already in canonical form, are
// slices of one string holding the whole header; the first value of each
// key is in one array.
func parseAnswer(b []byte, method string) (*answer, int, bool) {
	end := bytes.Index(b, []byte("\r\n\r\n"))
	if end < 0 {
		return nil, 0, false
	}
	head := b[:end+2] // each line with its CRLF
	lines := 0
	for i, c := range head {
		switch c {
		case '\n':
			if i == 0 || head[i-1] != '\r' {
				return nil, 0, false // a bare LF ends a line for textproto too
			}
			lines++
		case '\r':
			if i+1 == len(head) || head[i+1] != '\n' {
				return nil, 0, false
			}
		}
	}
	if lines-1 > maxAnswerFields {
		return nil, 0, false
	}
	// The status line, checked before anything is allocated.
	eol := bytes.IndexByte(head, '\r')
	var minor int
	switch {
	case bytes.HasPrefix(head, []byte("HTTP/1.1 ")):
		minor = 1
	case bytes.HasPrefix(head, []byte("HTTP/1.0 ")):
	default:
		return nil, 0, false
	}
	st := len("HTTP/1.x ")
	for st < eol && head[st] == ' ' {
		st++
	}
	code := 0
	for i := st; i < st+3; i++ {
		if i >= eol || head[i] < '0' || head[i] > '9' {
			return nil, 0, false
		}
		code = code*10 + int(head[i]-'0')
	}
	if code < 200 || st+3 < eol && head[st+3] != ' ' {
		return nil, 0, false
	}

	s := string(head)
	a := &answer{}
	r := &a.resp
	r.Status = s[st:eol]
	r.StatusCode = code
	r.Proto = s[:len("HTTP/1.x")]
	r.ProtoMajor, r.ProtoMinor = 1, minor
	// The fields, in order, before the map: what transfer needs is noted
	// on the way, and the map is filled once per key.
	var keys [maxAnswerFields]string
	vals := a.vals[:]
	if lines-1 > answerVals {
		vals = make([]string, lines-1)
	}
	var t transferFields
	n := 0
	for rest := s[eol+2:]; rest != ""; {
		i := strings.IndexByte(rest, '\r')
		line := rest[:i]
		rest = rest[i+2:]
		key, value, ok := headerField(line)
		if !ok || !t.note(key, value) {
			return nil, 0, false
		}
		if key == "Content-Length" && t.lengths > 1 {
			continue // kept once, as ReadResponse does
		}
		keys[n], vals[n] = key, value
		n++
	}
	// HTTP/1.1's Connection: close is taken out, as ReadResponse does.
	dropConnection := minor == 1 && t.close
	r.Header = make(http.Header, n)
fields:
	for i, k := range keys[:n] {
		if dropConnection && k == "Connection" {
			continue
		}
		for _, seen := range keys[:i] {
			if seen == k {
				r.Header[k] = append(r.Header[k], vals[i])
				continue fields
			}
		}
		r.Header[k] = vals[i : i+1 : i+1]
	}
	if !a.transfer(&t, method) {
		return nil, 0, false
	}
	return a, end + 4, true
}

// headerField splits a header line as textproto does, when the line is
// plain: a token key, a colon, a value of valid bytes whose leading and
// trailing spaces and tabs are dropped. The key is made canonical (a new
// string only when it is not already).
func headerField(line string) (key, value string, ok bool) {
	if line == "" || line[0] == ' ' || line[0] == '\t' {
		return "", "", false // a folded line, or white space before the first key
	}
	colon := strings.IndexByte(line, ':')
	if colon <= 0 {
		return "", "", false
	}
	key = line[:colon]
	canonical, upper := true, true
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !isTokenByte(c) {
			return "", "", false // a space before the colon among them: ReadResponse keeps such a key as it is
		}
		if upper && 'a' <= c && c <= 'z' || !upper && 'A' <= c && c <= 'Z' {
			canonical = false
		}
		upper = c == '-'
	}
	if !canonical {
		key = http.CanonicalHeaderKey(key)
	}
	value = line[colon+1:]
	for i := 0; i < len(value); i++ {
		if c := value[i]; c < ' ' && c != '\t' || c == 0x7f {
			return "", "", false
		}
	}
	for value != "" && (value[0] == ' ' || value[0] == '\t') {
		value = value[1:]
	}
	for value != "" && (value[len(value)-1] == ' ' || value[len(value)-1] == '\t') {
		value = value[:len(value)-1]
	}
	return key, value, true
}

// transferFields is what an answer's header says of its length and its
// connection.
type transferFields struct {
	length    string // the first Content-Length
	lengths   int    // how many Content-Length fields, all the same
	close     bool   // a Connection field has the token close
	keepAlive bool   // one has keep-alive
}

// note notes one field, and reports false for a header left to
// http.ReadResponse: a Transfer-Encoding or Pragma (after which it may
// add a Cache-Control), or Content-Lengths that differ (which it refuses).
func (t *transferFields) note(key, value string) bool {
	switch key {
	case "Transfer-Encoding", "Pragma":
		return false
	case "Connection":
		t.close = t.close || containsToken(value, "close")
		t.keepAlive = t.keepAlive || containsToken(value, "keep-alive")
	case "Content-Length":
		if t.lengths > 0 && value != t.length {
			return false
		}
		t.length = value
		t.lengths++
	}
	return true
}

// transfer sets the answer's Close, ContentLength and Body from t, as
// http.ReadResponse does for a request of the method, and reports false
// for what it leaves to ReadResponse.
func (a *answer) transfer(t *transferFields, method string) bool {
	r := &a.resp
	r.Close = t.close || r.ProtoMinor == 0 && !t.keepAlive
	length := int64(-1)
	if t.lengths > 0 {
		n, err := strconv.ParseUint(t.length, 10, 63)
		if err != nil {
			return false // ReadResponse refuses the answer
		}
		length = int64(n)
	}
	switch {
	case method == http.MethodHead:
		r.ContentLength = length
	case r.StatusCode == http.StatusNoContent || r.StatusCode == http.StatusNotModified:
		r.ContentLength = 0
	case length < 0:
		return false // the body ends with the connection
	default:
		r.ContentLength = length
	}
	if method == http.MethodHead || r.ContentLength == 0 {
		r.Body = http.NoBody
	} else {
		a.body.lr.n = r.ContentLength
	}
	return true
}

// containsToken reports whether one of the comma-separated elements of v
// is token (lower case), ignoring case and the spaces and tabs around it,
// as net/http reads Connection.
func containsToken(v, token string) bool {
	for v != "" {
		elem := v
		if i := strings.IndexByte(v, ','); i >= 0 {
			elem, v = v[:i], v[i+1:]
		} else {
			v = ""
		}
		elem = strings.Trim(elem, " \t")
		if len(elem) != len(token) {
			continue
		}
		same := true
		for i := 0; i < len(elem) && same; i++ {
			c := elem[i]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			same = c == token[i]
		}
		if same {
			return true
		}
	}
	return false
}

// lengthReader reads a body of known length from a connection's reader,
// as net/http's body does: io.EOF with the last bytes, and
// io.ErrUnexpectedEOF if the connection ends first.
type lengthReader struct {
	br *bufio.Reader
	n  int64 // bytes left
}

func (r *lengthReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.n {
		p = p[:r.n]
	}
	n, err := r.br.Read(p)
	r.n -= int64(n)
	switch {
	case err == io.EOF && r.n > 0:
		err = io.ErrUnexpectedEOF
	case err == nil && r.n == 0:
		err = io.EOF
	}
	return n, err
}
