package bench

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/muster-registry/muster/internal/servertest"
)

func TestBeatLogWithin(t *testing.T) {
	start := time.Date(2026, 11, 23, 7, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return start.Add(d) }
	log := beatLog{
		{{at: 500_000, took: 1_000}, {at: 1_000_000, took: 2_000}, {at: 1_500_000, took: 30_000}},
		{{at: 999_999, took: 50_000}, {at: 2_000_000, took: 4_000}, {at: 2_000_001, took: 90_000}},
	}
	cases := []struct {
		name     string
		from, to time.Time
		wantN    uint64
		wantMax  float64 // ms
	}{
		{"all", at(0), at(time.Hour), 6, 90},
		{"inclusive at both ends", at(time.Second), at(2 * time.Second), 3, 30},
		{"none", at(3 * time.Second), at(4 * time.Second), 0, 0},
		{"before the start", at(-time.Second), at(999_999 * time.Microsecond), 2, 50},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := log.within(start, tc.from, tc.to)
			if h.Count() != tc.wantN || (tc.wantN > 0 && (h.Max() < tc.wantMax*0.98 || h.Max() > tc.wantMax*1.02)) {
				t.Errorf("within: %d heartbeats, max %.2f ms; want %d, %.0f ms", h.Count(), h.Max(), tc.wantN, tc.wantMax)
			}
		})
	}
}

// A small wave against an in-memory server: every timeout arrives, and the
// wave's heartbeats are some of the run's.
func TestExpiryScenario(t *testing.T) {
	srv := servertest.Start(t, servertest.Options{})
	res, err := Run(t.Context(), Config{Addr: srv.URL, Scenario: "expiry", Instances: 50, Others: 300, Concurrency: 4, Namespace: "e1"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Expired != 50 || res.Errors != 0 || res.FirstError != "" {
		t.Fatalf("%d of 50 expired, %d errors (%s)", res.Expired, res.Errors, res.FirstError)
	}
	if res.HeartbeatOps == 0 || res.WaveHeartbeatOps > res.HeartbeatOps {
		t.Errorf("%d heartbeats in the wave of %d in the run", res.WaveHeartbeatOps, res.HeartbeatOps)
	}
	if res.WaveHeartbeatOps > 0 && (res.WaveHeartbeatP99Ms > res.WaveHeartbeatMaxMs || res.WaveHeartbeatMaxMs > res.HeartbeatMaxMs) {
		t.Errorf("wave p99 %v, max %v; run max %v", res.WaveHeartbeatP99Ms, res.WaveHeartbeatMaxMs, res.HeartbeatMaxMs)
	}
}

// When the event stream fails, no timeout can be seen any more: the others
// stop heartbeating at once rather than until a minute past the deadlines.
func TestExpiryStopsWhenTheStreamFails(t *testing.T) {
	srv := servertest.Start(t, servertest.Options{})
	target, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/events" {
			http.Error(w, "no streams today", http.StatusServiceUnavailable)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer front.Close()
	// Well short of the dying instances' timeout (3 s) plus expiryGrace:
	// without the stop, the run outlives this context.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	res, err := Run(ctx, Config{Addr: front.URL, Scenario: "expiry", Instances: 20, Others: 20, Concurrency: 2, Namespace: "e2"})
	if ctx.Err() != nil {
		t.Fatalf("the run went on for %s after the stream failed", 30*time.Second)
	}
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.FirstError, "503") || res.Errors == 0 {
		t.Errorf("first error %q, %d errors: want the stream's failure", res.FirstError, res.Errors)
	}
}
