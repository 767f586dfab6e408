package httpapi

import (
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/muster-registry/muster/api"
	"github.com/muster-registry/muster/internal/state"
)

// discardWriter is a ResponseWriter that keeps nothing.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(b []byte) (int, error) { return io.Discard.Write(b) }
func (d *discardWriter) WriteHeader(int)             {}

// BenchmarkWriteInstanceList encodes a 100-instance list, the body of a
// lookup answer.
func BenchmarkWriteInstanceList(b *testing.B) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	insts := make([]api.Instance, 100)
	for i := range insts {
		insts[i] = api.Instance{Namespace: "bench", Service: "svc", ID: fmt.Sprintf("i-%05d", i), Address: "10.0.0.1", Port: 8080,
			Tags: []string{"bench"}, HeartbeatTimeout: 30, Status: api.StatusPassing, RegisteredAt: now, LastHeartbeatAt: now, ExpiresAt: now}
	}
	body := list(insts, 1000, nil)
	w := &discardWriter{h: make(http.Header)}
	b.ReportAllocs()
	for b.Loop() {
		writeJSON(w, http.StatusOK, body)
	}
}

// BenchmarkWriteInstanceListFast is BenchmarkWriteInstanceList with the
// hand-written encoder that listInstances uses.
func BenchmarkWriteInstanceListFast(b *testing.B) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	insts := make([]listed, 100)
	for i := range insts {
		insts[i] = listed{Instance: api.Instance{Namespace: "bench", Service: "svc", ID: fmt.Sprintf("i-%05d", i), Address: "10.0.0.1", Port: 8080,
			Tags: []string{"bench"}, HeartbeatTimeout: 30, Status: api.StatusPassing, RegisteredAt: now, LastHeartbeatAt: now, ExpiresAt: now},
			md: state.Metadata{{Key: "region", Value: "eu-west-1"}, {Key: "zone", Value: "eu-west-1a"}}}
	}
	body := list(insts, 1000, nil)
	h := &Handler{}
	w := &discardWriter{h: make(http.Header)}
	b.ReportAllocs()
	for b.Loop() {
		h.writeInstanceList(w, http.StatusOK, body)
	}
}
