package client

import (
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
