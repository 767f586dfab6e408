package client

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"unsafe"

	"pgregory.net/rapid"
)

// Answers read by hand (parseAnswer) against http.ReadResponse.

// checkAnswer holds parseAnswer to http.ReadResponse on b, an answer to a
// request of method: parseAnswer either declines or reads the same status,
// header and length, consumes the same bytes, and gives the same body. It
// reports whether parseAnswer took the answer.
func checkAnswer(t tb, b []byte, method string) bool {
	t.Helper()
	a, n, ok := parseAnswer(b, method)
	rd := bytes.NewReader(b)
	br := bufio.NewReaderSize(rd, max(len(b), 16))
	want, err := http.ReadResponse(br, &http.Request{Method: method})
	if !ok {
		return false
	}
	if err != nil {
		t.Fatalf("parseAnswer took %q, which ReadResponse refuses: %v", b, err)
	}
	got := &a.resp
	if consumed := len(b) - rd.Len() - br.Buffered(); n != consumed {
		t.Fatalf("in %q parseAnswer consumed %d bytes, ReadResponse %d", b, n, consumed)
	}
	if got.Status != want.Status || got.StatusCode != want.StatusCode || got.Proto != want.Proto ||
		got.ProtoMajor != want.ProtoMajor || got.ProtoMinor != want.ProtoMinor {
		t.Fatalf("in %q: status %q %d %s %d.%d, want %q %d %s %d.%d", b,
			got.Status, got.StatusCode, got.Proto, got.ProtoMajor, got.ProtoMinor,
			want.Status, want.StatusCode, want.Proto, want.ProtoMajor, want.ProtoMinor)
	}
	if !reflect.DeepEqual(got.Header, want.Header) {
		t.Fatalf("in %q: header\n%q\nwant\n%q", b, got.Header, want.Header)
	}
	if got.ContentLength != want.ContentLength || got.Close != want.Close ||
		!reflect.DeepEqual(got.TransferEncoding, want.TransferEncoding) || got.Trailer != nil || got.Uncompressed {
		t.Fatalf("in %q: length %d, close %v, transfer encoding %q, trailer %v; want %d, %v, %q, %v", b,
			got.ContentLength, got.Close, got.TransferEncoding, got.Trailer,
			want.ContentLength, want.Close, want.TransferEncoding, want.Trailer)
	}
	if (got.Body == http.NoBody) != (want.Body == http.NoBody) {
		t.Fatalf("in %q: no body %v, want %v", b, got.Body == http.NoBody, want.Body == http.NoBody)
	}
	if got.Body != http.NoBody {
		lr := lengthReader{br: bufio.NewReader(bytes.NewReader(b[n:])), n: a.body.lr.n}
		gotBody, gotErr := io.ReadAll(&lr)
		wantBody, wantErr := io.ReadAll(want.Body)
		if !bytes.Equal(gotBody, wantBody) || gotErr != wantErr {
			t.Fatalf("in %q: body %q, %v; want %q, %v", b, gotBody, gotErr, wantBody, wantErr)
		}
	}
	return true
}

func TestParseAnswer(t *testing.T) {
	const server = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nDate: Mon, 02 Jan 2006 15:04:05 GMT\r\nContent-Length: 5\r\n\r\n{\"a\":"
	tests := []struct {
		name   string
		answer string
		method string
		take   bool
	}{
		{"the server's", server, "POST", true},
		{"with an index", "HTTP/1.1 200 OK\r\nX-Muster-Index: 42\r\nContent-Length: 2\r\n\r\n{}", "GET", true},
		{"no reason", "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", "GET", true},
		{"spaces before the code and after the reason", "HTTP/1.1   404 Not  Found \r\nContent-Length: 0\r\n\r\n", "GET", true},
		{"no header", "HTTP/1.1 204 No Content\r\n\r\n", "DELETE", true},
		{"odd spacing", "HTTP/1.1 200 OK\r\nA:b\r\nB:  c \t\r\nC:\t\r\nD:\r\nContent-Length:3  \r\n\r\nabc", "GET", true},
		{"non-canonical keys", "HTTP/1.1 200 OK\r\ncontent-type: a\r\nCONTENT-LENGTH: 1\r\nx-muster-INDEX: 3\r\n\r\nx", "GET", true},
		{"duplicate keys", "HTTP/1.1 200 OK\r\nVary: a\r\nvary: b\r\nVary: c\r\nContent-Length: 0\r\n\r\n", "GET", true},
		{"Content-Length twice, same", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\ncontent-length:2 \r\n\r\nab", "GET", true},
		{"Content-Length twice, different", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc", "GET", false},
		{"Content-Length negative", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "GET", false},
		{"Content-Length signed", "HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\nx", "GET", false},
		{"Content-Length empty", "HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n", "GET", false},
		{"Content-Length too large", "HTTP/1.1 200 OK\r\nContent-Length: 9223372036854775808\r\n\r\n", "GET", false},
		{"Content-Length largest", "HTTP/1.1 200 OK\r\nContent-Length: 9223372036854775807\r\n\r\nab", "GET", true},
		{"Content-Length a list", "HTTP/1.1 200 OK\r\nContent-Length: 1, 1\r\n\r\nx", "GET", false},
		{"no Content-Length: read to the close", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nabc", "GET", false},
		{"HEAD with a length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", "HEAD", true},
		{"HEAD without one", "HTTP/1.1 200 OK\r\n\r\n", "HEAD", true},
		{"304 with a length", "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n", "GET", true},
		{"204 with a bad length", "HTTP/1.1 204 No Content\r\nContent-Length: x\r\n\r\n", "GET", false},
		{"Connection: close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", "GET", true},
		{"Connection: close among others", "HTTP/1.1 200 OK\r\nconnection: Keep-Alive , CLOSE\r\nConnection: x\r\nContent-Length: 0\r\n\r\n", "GET", true},
		{"Connection: closed", "HTTP/1.1 200 OK\r\nConnection: closed\r\nContent-Length: 0\r\n\r\n", "GET", true},
		{"HTTP/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nab", "GET", true},
		{"HTTP/1.0 keep-alive", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nab", "GET", true},
		{"HTTP/1.0 keep-alive and close", "HTTP/1.0 200 OK\r\nConnection: keep-alive,close\r\nContent-Length: 2\r\n\r\nab", "GET", true},
		{"HTTP/1.2", "HTTP/1.2 200 OK\r\nContent-Length: 0\r\n\r\n", "GET", false},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n", "GET", false},
		{"identity", "HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\nContent-Length: 0\r\n\r\n", "GET", false},
		{"Pragma", "HTTP/1.1 200 OK\r\nPragma: no-cache\r\nContent-Length: 0\r\n\r\n", "GET", false},
		{"Trailer without chunks", "HTTP/1.1 200 OK\r\nTrailer: X-Sum\r\nContent-Length: 0\r\n\r\n", "GET", true},
		{"100 Continue", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", "GET", false},
		{"101", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n", "GET", false},
		{"103", "HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n", "GET", false},
		{"103 with a length: left to the transport's 1xx loop", "HTTP/1.1 103 Early Hints\r\nContent-Length: 0\r\n\r\n", "GET", false},
		{"HEAD, 100", "HTTP/1.1 100 Continue\r\n\r\n", "HEAD", false},
		{"code 099", "HTTP/1.1 099 x\r\nContent-Length: 0\r\n\r\n", "GET", false},
		{"two-digit code", "HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n", "GET", false},
		{"four-digit code", "HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n", "GET", false},
		{"code glued to the reason", "HTTP/1.1 200OK\r\nContent-Length: 0\r\n\r\n", "GET", false},
		{"lower-case proto", "http/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", "GET", false},
		{"tab after the proto", "HTTP/1.1\t200 OK\r\nContent-Length: 0\r\n\r\n", "GET", false},
		{"folded line", "HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 0\r\n\r\n", "GET", false},
		{"space before the first key", "HTTP/1.1 200 OK\r\n X-A: a\r\nContent-Length: 0\r\n\r\n", "GET", false},
		{"space before the colon", "HTTP/1.1 200 OK\r\nX-A : a\r\nContent-Length: 0\r\n\r\n", "GET", false},
		{"no colon", "HTTP/1.1 200 OK\r\nX-A a\r\nContent-Length: 0\r\n\r\n", "GET", false},
		{"empty key", "HTTP/1.1 200 OK\r\n: a\r\nContent-Length: 0\r\n\r\n", "GET", false},
		{"control byte in a value", "HTTP/1.1 200 OK\r\nX-A: a\x01b\r\nContent-Length: 0\r\n\r\n", "GET", false},
		{"DEL in a value", "HTTP/1.1 200 OK\r\nX-A: a\x7f\r\nContent-Length: 0\r\n\r\n", "GET", false},
		{"UTF-8 in a value", "HTTP/1.1 200 OK\r\nX-A: é\r\nContent-Length: 0\r\n\r\n", "GET", true},
		{"bare LF", "HTTP/1.1 200 OK\nContent-Length: 0\n\n", "GET", false},
		{"bare LF then CRLFs", "HTTP/1.1 200 OK\r\nX-A: a\nX-B: b\r\nContent-Length: 0\r\n\r\n", "GET", false},
		{"bare CR", "HTTP/1.1 200 OK\r\nX-A: a\rb\r\nContent-Length: 0\r\n\r\n", "GET", false},
		{"not all buffered", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n", "GET", false},
		{"empty", "", "GET", false},
		{"a body shorter than its length", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", "GET", true},
		{"more than eight keys", "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\nF: 6\r\nG: 7\r\nH: 8\r\nI: 9\r\nJ: 10\r\nContent-Length: 0\r\n\r\n", "GET", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if took := checkAnswer(t, []byte(tt.answer), tt.method); took != tt.take {
				t.Errorf("parseAnswer took it: %v, want %v", took, tt.take)
			}
		})
	}
}

// pick draws from good or, with a chance of odd in 12, from bad.
func pick(t *rapid.T, odd int, good, bad []string, label string) string {
	if rapid.IntRange(0, 11).Draw(t, label+" is odd") < odd {
		return rapid.SampledFrom(bad).Draw(t, label)
	}
	return rapid.SampledFrom(good).Draw(t, label)
}

// drawField draws a header line, valid or (by odd) not, with its line end.
func drawField(t *rapid.T, odd int) string {
	key := pick(t, odd, []string{
		"Content-Length", "content-length", "CONTENT-LENGTH", "Connection", "connection", "Content-Type",
		"content-type", "Date", "X-Muster-Index", "x-muster-index", "X_Under", "Cache-Control", "Trailer", "Vary", "1x",
	}, []string{"Transfer-Encoding", "transfer-encoding", "Pragma", "Bad Key", "Key ", "", "É", "A\x00"}, "key")
	var value string
	switch strings.ToLower(key) {
	case "content-length":
		value = pick(t, odd, []string{"0", "5", "12", "00"}, []string{"-1", "abc", "", "5 ", "+5", "1, 1", "0x5",
			"9223372036854775807", "9223372036854775808", "99999999999999999999"}, "length")
	case "connection":
		value = rapid.SampledFrom([]string{"close", "keep-alive", "Keep-Alive, close", "CLOSE", "upgrade",
			" close ,x", "xclose", "close\t", ",", "clos\u00e9"}).Draw(t, "connection")
	case "transfer-encoding":
		value = rapid.SampledFrom([]string{"chunked", "identity", "chunked, gzip", "Chunked"}).Draw(t, "encoding")
	case "pragma":
		value = rapid.SampledFrom([]string{"no-cache", "x"}).Draw(t, "pragma")
	default:
		if rapid.Bool().Draw(t, "any value") {
			value = rapid.StringMatching(`[ -~\t]{0,10}`).Draw(t, "value")
		} else {
			value = pick(t, odd, []string{"application/json", "", "a b", "é", "no-cache", ":x"}, []string{"x\x01y", "\x7f", "a\rb", "a\nb"}, "value")
		}
	}
	sep := pick(t, odd, []string{":", ": ", ":  ", ":\t", ": \t", "::"}, []string{" :", ""}, "separator")
	trail := rapid.SampledFrom([]string{"", "", " ", "\t"}).Draw(t, "trailing")
	line := key + sep + value + trail + drawEOL(t, odd)
	if rapid.IntRange(0, 11).Draw(t, "fold") < odd/2 {
		line += rapid.SampledFrom([]string{" ", "\t"}).Draw(t, "fold space") + "more" + drawEOL(t, odd)
	}
	return line
}

// drawEOL is CRLF or, by odd, another line end.
func drawEOL(t *rapid.T, odd int) string {
	return pick(t, odd, []string{"\r\n", "\r\n", "\r\n", " \r\n"}, []string{"\n", "\r", "\r\r\n"}, "line end")
}

// drawAnswer draws an answer's start: a status line, header lines, the
// blank line and some of a body, each part odd (refused by ReadResponse,
// or left to it) with a chance that differs from answer to answer.
func drawAnswer(t *rapid.T) []byte {
	odd := max(rapid.IntRange(-6, 6).Draw(t, "oddness"), 0) // plain half the time
	var b strings.Builder
	b.WriteString(pick(t, odd, []string{"HTTP/1.1", "HTTP/1.0"}, []string{"HTTP/1.2", "HTTP/2.0", "HTTP/1", "http/1.1", "HTTP/1.1x"}, "proto"))
	b.WriteString(pick(t, odd, []string{" ", "  "}, []string{"", "\t"}, "space"))
	b.WriteString(pick(t, odd, []string{"200", "201", "204", "304", "404", "503", "600", "999"},
		[]string{"100", "101", "103", "099", "000", "2000", "20", "+20", "-20", "abc"}, "code"))
	b.WriteString(pick(t, odd, []string{"", " OK", " Not Found", "  OK ", " é", " \x01"}, []string{"OK", "\tOK"}, "reason"))
	b.WriteString(drawEOL(t, odd))
	fields := rapid.IntRange(0, 8).Draw(t, "fields")
	length := rapid.IntRange(-1, fields).Draw(t, "Content-Length at") // -1: none added
	for i := range fields + 1 {
		if i == length {
			b.WriteString("Content-Length: " + rapid.SampledFrom([]string{"0", "3", "12"}).Draw(t, "length") + "\r\n")
		}
		if i < fields {
			b.WriteString(drawField(t, odd))
		}
	}
	b.WriteString(pick(t, odd, []string{"\r\n"}, []string{"\n", ""}, "blank line"))
	b.WriteString(rapid.StringN(0, 12, -1).Draw(t, "body"))
	return []byte(b.String())
}

// Any answer, valid or not: parseAnswer declines or agrees.
func TestParseAnswerProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		checkAnswer(t, drawAnswer(t), rapid.SampledFrom([]string{"GET", "HEAD", "POST"}).Draw(t, "method"))
	})
}

// Plain answers, in any spelling the server or a proxy may give them:
// parseAnswer takes every one (and agrees).
func TestParseAnswerTakesPlainAnswers(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var b strings.Builder
		b.WriteString(rapid.SampledFrom([]string{"HTTP/1.1 ", "HTTP/1.0 "}).Draw(t, "proto"))
		code := rapid.IntRange(200, 599).Draw(t, "code")
		b.WriteString(strings.Repeat(" ", rapid.IntRange(0, 2).Draw(t, "spaces")))
		b.WriteString(string(rune('0'+code/100)) + string(rune('0'+code/10%10)) + string(rune('0'+code%10)))
		b.WriteString(rapid.SampledFrom([]string{"", " OK", " Not Found", " "}).Draw(t, "reason"))
		b.WriteString("\r\n")
		method := rapid.SampledFrom([]string{"GET", "HEAD", "POST"}).Draw(t, "method")
		length := rapid.IntRange(0, 20).Draw(t, "length")
		fields := rapid.SliceOfN(rapid.StringMatching(`[A-Za-z][A-Za-z0-9-]{0,10}`), 0, 10).Draw(t, "keys")
		at := rapid.IntRange(0, len(fields)).Draw(t, "length at")
		for i := 0; i <= len(fields); i++ {
			if i == at {
				b.WriteString(rapid.SampledFrom([]string{"Content-Length", "content-length"}).Draw(t, "length key"))
				b.WriteString(": " + string(rune('0'+length/10)) + string(rune('0'+length%10)) + "\r\n")
			}
			if i == len(fields) {
				break
			}
			k := fields[i]
			switch strings.ToLower(k) {
			case "content-length", "transfer-encoding", "pragma":
				continue
			}
			b.WriteString(k + rapid.SampledFrom([]string{":", ": ", ":\t"}).Draw(t, "separator"))
			b.WriteString(rapid.StringMatching(`[!-~]([ -~]{0,12}[!-~])?`).Draw(t, "value") + "\r\n")
		}
		b.WriteString("\r\n")
		b.WriteString(strings.Repeat("x", length))
		if !checkAnswer(t, []byte(b.String()), method) {
			t.Fatalf("parseAnswer declined %q", b.String())
		}
	})
}

// FuzzParseAnswer: on any bytes, parseAnswer declines or reads what
// http.ReadResponse reads. `go test` runs the seeds.
func FuzzParseAnswer(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nDate: Mon, 02 Jan 2006 15:04:05 GMT\r\nContent-Length: 2\r\n\r\n{}"), false)
	f.Add([]byte("HTTP/1.1 200 OK\r\ncontent-length: 2\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"), false)
	f.Add([]byte("HTTP/1.0 404 Not Found\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n"), false)
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n"), true)
	f.Add([]byte("HTTP/1.1 204 No Content\r\n\r\n"), false)
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), false)
	f.Add([]byte("HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n"), false)
	f.Add([]byte("HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 0\r\n\r\n"), false)
	f.Add([]byte("HTTP/1.1 200 OK\nContent-Length: 0\n\n"), false)
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"), false)
	f.Add([]byte("HTTP/1.1  200 OK \r\nX-A :b\r\n\r\n"), false)
	f.Fuzz(func(t *testing.T, b []byte, head bool) {
		method := http.MethodGet
		if head {
			method = http.MethodHead
		}
		checkAnswer(t, b, method)
	})
}

// TestParseAnswerSharesItsAllocations: the values, and the keys already
// canonical, are slices of one string; the first values share one array
// (the answer's); parsing the server's answer allocates the answer, that
// string and the header map, nothing per field.
func TestParseAnswerSharesItsAllocations(t *testing.T) {
	b := []byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nDate: Mon, 02 Jan 2006 15:04:05 GMT\r\nX-Muster-Index: 7\r\nContent-Length: 2\r\n\r\n{}")
	a, n, ok := parseAnswer(b, http.MethodGet)
	if !ok {
		t.Fatal("parseAnswer declined the server's answer")
	}
	status := uintptr(unsafe.Pointer(unsafe.StringData(a.resp.Status)))
	block := [2]uintptr{status - uintptr(len("HTTP/1.1 ")), status - uintptr(len("HTTP/1.1 ")) + uintptr(n)}
	inBlock := func(s string) bool {
		p := uintptr(unsafe.Pointer(unsafe.StringData(s)))
		return p >= block[0] && p+uintptr(len(s)) <= block[1]
	}
	vals := [2]uintptr{uintptr(unsafe.Pointer(&a.vals[0])), uintptr(unsafe.Pointer(&a.vals[len(a.vals)-1]))}
	for k, vv := range a.resp.Header {
		if !inBlock(k) || !inBlock(vv[0]) {
			t.Errorf("%s: %q is not a slice of the header's string", k, vv[0])
		}
		if p := uintptr(unsafe.Pointer(&vv[0])); p < vals[0] || p > vals[1] {
			t.Errorf("%s: its values are not in the answer's array", k)
		}
	}
	allocs := testing.AllocsPerRun(100, func() {
		if _, _, ok := parseAnswer(b, http.MethodGet); !ok {
			t.Fatal("declined")
		}
	})
	// The answer, the header's string, the map and its table.
	if allocs > 4 {
		t.Errorf("parseAnswer allocates %v times, want at most 4", allocs)
	}
}
