package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/muster-registry/muster/api"
	"github.com/muster-registry/muster/internal/fsm"
	"github.com/muster-registry/muster/internal/lease"
	"github.com/muster-registry/muster/internal/state"
)

// BenchmarkServeHeartbeat is one heartbeat through the whole handler
// (middleware, routing, strict decoding, lease, answer), without the network
// and without a journal.
func BenchmarkServeHeartbeat(b *testing.B) {
	leases, err := lease.New(lease.Options{})
	if err != nil {
		b.Fatal(err)
	}
	leases.SetLeader(true)
	tok := lease.NewToken()
	leases.InstanceAdded(&state.Instance{Namespace: "bench", Service: "svc", ID: "i-1", HeartbeatTimeout: 120, RegIndex: 1, Token: tok, RegisteredAt: time.Now()})
	h := New(Config{Store: state.New(0, leases), Leases: leases, Metrics: NewMetrics(nil)})
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/v1/services/bench/svc/instances/i-1/heartbeat", strings.NewReader(`{"token":"`+tok+`"}`))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		body := rec.Body.String()
		if rec.Code != http.StatusOK || len(body) < 10+22 {
			b.Fatalf("%d %s", rec.Code, body)
		}
		tok = body[10 : 10+22] // {"token":"…"
	}
}

// BenchmarkDecodeBatch strictly decodes a batch of 500 heartbeats, the body
// of POST /v1/heartbeats as muster bench sends it.
func BenchmarkDecodeBatch(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(`{"heartbeats":[`)
	for i := range 500 {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"namespace":"bench","service":"batch-%d","id":"i-%05d","token":"%s"}`, i%10, i, lease.NewToken())
	}
	sb.WriteString(`]}`)
	body := sb.String()
	b.ReportAllocs()
	for b.Loop() {
		var req api.BatchHeartbeatRequest
		r := httptest.NewRequest(http.MethodPost, "/v1/heartbeats", strings.NewReader(body))
		if _, err := decode(r, &req); err != nil || len(req.Heartbeats) != 500 {
			b.Fatal(err)
		}
	}
}

// BenchmarkServeLookup is one lookup of a 100-instance service through the
// whole handler, without the network: the unfiltered list (served from the
// list cache once built) and the same list behind a tag filter that every
// instance matches (built and encoded every time, as before the cache).
func BenchmarkServeLookup(b *testing.B) {
	leases, err := lease.New(lease.Options{})
	if err != nil {
		b.Fatal(err)
	}
	leases.SetLeader(true)
	defer leases.SetLeader(false)
	store := state.New(0, leases)
	h := New(Config{Store: store, Leases: leases, Proposer: &applyProposer{f: fsm.New(store)}, Metrics: NewMetrics(nil)})
	for i := range 100 {
		body := fmt.Sprintf(`{"address":"10.0.0.1","port":%d,"tags":["bench"],"heartbeat_timeout":120}`, 8080+i)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPut, fmt.Sprintf("/v1/services/bench/lookup/instances/i-%03d", i), strings.NewReader(body)))
		if rec.Code != http.StatusCreated {
			b.Fatalf("register: %d %s", rec.Code, rec.Body.String())
		}
	}
	for _, q := range []struct{ name, query string }{{"cached", "?limit=10000"}, {"uncached", "?limit=10000&tag=bench"}} {
		b.Run(q.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/services/bench/lookup/instances"+q.query, nil))
				if rec.Code != http.StatusOK || rec.Body.Len() < 100*300 {
					b.Fatalf("%d %d bytes", rec.Code, rec.Body.Len())
				}
			}
		})
	}
}

// BenchmarkServeBatch is one POST /v1/heartbeats of 1,000 heartbeats, as
// muster bench sends it, through the whole handler, without the network and
// without a journal. Divide by 1,000 for the cost of one renewal.
func BenchmarkServeBatch(b *testing.B) {
	leases, err := lease.New(lease.Options{})
	if err != nil {
		b.Fatal(err)
	}
	leases.SetLeader(true)
	defer leases.SetLeader(false)
	const n = 1000
	beats := make([]api.BatchHeartbeat, n)
	for i := range beats {
		beats[i] = api.BatchHeartbeat{Namespace: "bench", Service: fmt.Sprintf("batch-%d", i%10), ID: fmt.Sprintf("i-%07d", i), Token: lease.NewToken()}
		leases.InstanceAdded(&state.Instance{Namespace: "bench", Service: beats[i].Service, ID: beats[i].ID, HeartbeatTimeout: 120,
			RegIndex: uint64(i + 1), Token: beats[i].Token, RegisteredAt: time.Now()})
	}
	h := New(Config{Store: state.New(0, leases), Leases: leases, Metrics: NewMetrics(nil)})
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		body, err := json.Marshal(api.BatchHeartbeatRequest{Heartbeats: beats})
		if err != nil {
			b.Fatal(err)
		}
		req := httptest.NewRequest(http.MethodPost, "/v1/heartbeats", bytes.NewReader(body))
		rec := httptest.NewRecorder()
		b.StartTimer()
		h.ServeHTTP(rec, req)
		b.StopTimer()
		var out api.BatchHeartbeatResponse
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || rec.Code != http.StatusOK || len(out.Results) != n {
			b.Fatalf("%d %v %.200s", rec.Code, err, rec.Body.String())
		}
		for i, r := range out.Results {
			if r.Error != nil {
				b.Fatalf("heartbeat %d: %+v", i, r.Error)
			}
			beats[i].Token = r.Token
		}
		b.StartTimer()
	}
}

// BenchmarkServeRegister is one registration (POST, the bench's body)
// through the whole handler and the FSM's apply, without the network and
// without Raft: every one registers a new instance.
func BenchmarkServeRegister(b *testing.B) {
	leases, err := lease.New(lease.Options{})
	if err != nil {
		b.Fatal(err)
	}
	leases.SetLeader(true)
	defer leases.SetLeader(false)
	store := state.New(0, leases)
	h := New(Config{Store: store, Leases: leases, Proposer: &applyProposer{f: fsm.New(store)}, Metrics: NewMetrics(nil)})
	const body = `{"address":"10.0.0.1","port":8080,"tags":["bench"],"heartbeat_timeout":120}`
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/services/bench/register/instances", strings.NewReader(body)))
		if rec.Code != http.StatusCreated {
			b.Fatalf("%d %s", rec.Code, rec.Body.String())
		}
	}
}
