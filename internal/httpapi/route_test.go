package httpapi

import (
	"bufio"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/muster-registry/muster/internal/lease"
	"github.com/muster-registry/muster/internal/state"
)

// TestHeartbeatRouteAgreesWithMux holds heartbeatRoute to the handler's own
// mux: whatever it takes, the mux routes to the heartbeat with the same
// values; and the paths SDKs send are taken (about one generated request
// in twenty is too).
func TestHeartbeatRouteAgreesWithMux(t *testing.T) {
	leases, err := lease.New(lease.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h := New(Config{Store: state.New(0, leases), Leases: leases})
	name := rapid.SampledFrom([]string{"acme", "web", "i-1", "a:b.c_d", "x.y", "heartbeat", "instances"})
	odd := rapid.SampledFrom([]string{
		"v1", "services", "", ".", "..", "%2F", "%2f", "instances%2Fi-1", "web%2Finstances",
		"%41", "a%20b", "%2e%2e", "%2E", "a b", ";x", "x?y=1", "é", "%",
	})
	segment := rapid.Custom(func(t *rapid.T) string {
		if rapid.IntRange(0, 3).Draw(t, "odd") == 0 {
			return odd.Draw(t, "segment")
		}
		return name.Draw(t, "segment")
	})
	rapid.Check(t, func(t *rapid.T) {
		method := rapid.SampledFrom([]string{"POST", "POST", "POST", "GET", "PUT", "post"}).Draw(t, "method")
		var segs []string
		if rapid.Bool().Draw(t, "shaped") {
			segs = []string{"v1", "services", segment.Draw(t, "ns"), segment.Draw(t, "name"), "instances", segment.Draw(t, "id"), "heartbeat"}
			if rapid.IntRange(0, 3).Draw(t, "replace") == 0 {
				segs[rapid.IntRange(0, len(segs)-1).Draw(t, "at")] = segment.Draw(t, "other")
			}
		} else {
			segs = rapid.SliceOfN(segment, 0, 9).Draw(t, "segs")
		}
		// Mostly "/", sometimes a separator the mux sees otherwise.
		sep := rapid.SampledFrom([]string{"/", "/", "/", "/", "/", "/", "%2F", "//", "/./"})
		var target strings.Builder
		for _, s := range segs {
			target.WriteString(sep.Draw(t, "sep"))
			target.WriteString(s)
		}
		r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(method + " " + target.String() + " HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")))
		if err != nil {
			t.Skip("not a request: ", err)
		}
		ns, name, id, ok := heartbeatRoute(r)
		h.mux.ServeHTTP(httptest.NewRecorder(), r)
		if !ok {
			return
		}
		if r.Pattern != heartbeatPattern {
			t.Fatalf("%s %s: taken, but the mux routes it to %q", method, target.String(), r.Pattern)
		}
		for _, v := range [][2]string{{"ns", ns}, {"name", name}, {"id", id}} {
			if got := r.PathValue(v[0]); got != v[1] {
				t.Fatalf("%s %s: %s is %q, the mux has %q", method, target.String(), v[0], v[1], got)
			}
		}
	})
	for target, want := range map[string]bool{
		"/v1/services/acme/web/instances/i-1/heartbeat":      true,
		"/v1/services/a.b/c_d/instances/host:8080/heartbeat": true,
		// The mux redirects these, or sees other segments.
		"/v1/services/./web/instances/i-1/heartbeat":      false,
		"/v1/services/acme/web/instances/../heartbeat":    false,
		"/v1/services/acme/web/instances%2Fi-1/heartbeat": false,
		"/v1/services/acme/web/instances/i-1%2Fheartbeat": false,
		"/v1/services/acme//web/instances/i-1/heartbeat":  false,
		"/v1/services/acme/web/instances/i-1/heartbeat/":  false,
		"/v1/services/acme/web/instances/a/b/heartbeat":   false,
		// Both ends overlap or nearly.
		"/v1/services/heartbeat":                           false,
		"/v1/services//heartbeat":                          false,
		"/v1/services/instances/heartbeat":                 false,
		"/v1/services/a/instances/heartbeat":               false,
		"/v1/services/a/b/instances/heartbeat":             false,
		"/v1/services/acme/web/instances/i-1/heartbeat?x=": true,
	} {
		r := httptest.NewRequest(http.MethodPost, target, nil)
		if _, _, _, ok := heartbeatRoute(r); ok != want {
			t.Errorf("POST %s: taken %v, want %v", target, ok, want)
		}
		// Through the whole handler: an unknown instance or no route, never a panic's 500.
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, target, strings.NewReader(`{"token":"t"}`)))
		if rec.Code == http.StatusInternalServerError {
			t.Errorf("POST %s: %d %s", target, rec.Code, rec.Body)
		}
	}
}
