package client

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

// BenchmarkTransport sends heartbeats in parallel to an in-process server
// over loopback, through the lean transport and through net/http's (with
// enough idle connections). The server's cost is in both; the difference
// is the client's.
//
//	go test -run '^$' -bench Transport -benchmem ./client/
func BenchmarkTransport(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"token":"tok-2","expires_at":"2025-01-01T00:00:30Z"}`+"\n")
	}))
	b.Cleanup(srv.Close)
	u, err := url.Parse(srv.URL)
	if err != nil {
		b.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		rt   http.RoundTripper
	}{
		{"lean", newTransport(u, netHTTPTransport(http.DefaultTransport.(*http.Transport)))},
		{"net-http", netHTTPTransport(http.DefaultTransport.(*http.Transport))},
	} {
		b.Run(tt.name, func(b *testing.B) {
			c, err := New(srv.URL, WithHTTPClient(&http.Client{Transport: tt.rt}))
			if err != nil {
				b.Fatal(err)
			}
			defer c.CloseIdleConnections()
			b.ReportAllocs()
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := c.Heartbeat(b.Context(), "acme", "web", "i-1", "tok-1"); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkTransportWire compares, without the network, writing a
// heartbeat request and reading its answer's header by hand (writeRequest,
// parseAnswer) with net/http's (*http.Request).Write and
// http.ReadResponse, as the lean transport used them before.
func BenchmarkTransportWire(b *testing.B) {
	body := []byte(`{"token":"tok-1"}`)
	rd := bytes.NewReader(body)
	req, err := http.NewRequest(http.MethodPost, "http://127.0.0.1:7410/v1/namespaces/acme/services/web/instances/i-1/heartbeat", rd)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", DefaultUserAgent)
	req.Header.Set("Authorization", "Bearer s3cret")
	reqBody := req.Body
	answer := []byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nDate: Mon, 02 Jan 2006 15:04:05 GMT\r\n" +
		"Content-Length: 53\r\n\r\n{\"token\":\"tok-2\",\"expires_at\":\"2025-01-01T00:00:30Z\"}\n")

	bw := bufio.NewWriterSize(io.Discard, writeBufSize)
	write := map[string]func(){
		"net-http": func() { _ = req.Write(bw) },
		"hand":     func() { _, _ = writeRequest(bw, req) },
	}
	ar := bytes.NewReader(answer)
	br := bufio.NewReaderSize(ar, readBufSize)
	read := map[string]func(){
		"net-http": func() { _, _ = http.ReadResponse(br, req) },
		"hand": func() {
			_, _ = br.Peek(1)
			buffered, _ := br.Peek(br.Buffered())
			if _, n, ok := parseAnswer(buffered, req.Method); ok {
				_, _ = br.Discard(n)
			}
		},
	}
	for _, how := range []string{"net-http", "hand"} {
		b.Run("write/"+how, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				rd.Reset(body)
				req.Body = reqBody
				write[how]()
				_ = bw.Flush()
			}
		})
		b.Run("read/"+how, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				ar.Reset(answer)
				br.Reset(ar)
				read[how]()
			}
		})
	}
}
