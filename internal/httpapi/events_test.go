package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/muster-registry/muster/api"
	"github.com/muster-registry/muster/internal/lease"
	"github.com/muster-registry/muster/internal/state"
)

// storeWithEvents returns a handler over a store holding a few events,
// one of whose payloads has characters that HTML escaping would change.
func storeWithEvents(t *testing.T) (*Handler, *state.Store) {
	t.Helper()
	leases, err := lease.New(lease.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st := state.New(0, leases)
	now := time.Date(2026, 11, 23, 1, 2, 3, 4_000_000, time.UTC)
	k := state.Key{Namespace: "acme", Name: "web"}
	st.RegisterRevision(now, k, "1.0.0", nil, map[string]string{"note": "a<b & c>d"})
	st.RegisterRevision(now, k, "2.0.0-rc.1", nil, nil)
	st.SetPolicy(now, k, &api.Policy{DefaultRule: api.RuleLatestSemver, Routes: []api.PolicyRoute{{Name: "staff", Constraint: ">=2.0.0-0"}}})
	return New(Config{Store: st, Leases: leases}), st
}

// The feed is written from events encoded once in the store; the bytes
// must be what encoding/json (without HTML escaping) writes for the list.
func TestEventListBytesMatchTheEncoder(t *testing.T) {
	h, st := storeWithEvents(t)
	for _, query := range []string{"", "?limit=2", "?type=service.update", "?after=4"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/events"+query, nil))
		evs, newest, err := st.Events(0, state.EventFilter{}, 1000)
		if err != nil {
			t.Fatal(err)
		}
		eq, _ := parseEventQuery(httptest.NewRequest(http.MethodGet, "/v1/events"+query, nil))
		want, _, _ := st.Events(eq.after, eq.filter, eq.limit)
		if want == nil {
			want = []api.Event{}
		}
		ref := httptest.NewRecorder()
		writeJSON(ref, http.StatusOK, api.EventList{Events: want, Next: state.ScanTo(want, eq.limit, eq.after, newest)})
		if !bytes.Equal(rec.Body.Bytes(), ref.Body.Bytes()) {
			t.Fatalf("%s:\n got %s\nwant %s", query, rec.Body.Bytes(), ref.Body.Bytes())
		}
		if rec.Header().Get("Content-Type") != "application/json" || len(evs) < 4 {
			t.Fatalf("%s: content type %q, %d events", query, rec.Header().Get("Content-Type"), len(evs))
		}
	}
	if !strings.Contains(mustGet(t, h, "/v1/events"), `a<b & c>d`) || !strings.Contains(mustGet(t, h, "/v1/events"), `">=2.0.0-0"`) {
		t.Fatal("event JSON is HTML-escaped")
	}
}

func mustGet(t *testing.T, h *Handler, path string) string {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Body.String()
}

// SSE frames carry the same encoded events.
func TestStreamFramesCarryTheEncodedEvents(t *testing.T) {
	h, st := storeWithEvents(t)
	srv := httptest.NewServer(h)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v1/events", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	want, _, _ := st.EncodedEvents(0, state.EventFilter{}, 1000)
	sc := bufio.NewScanner(resp.Body)
	for _, e := range want {
		var frame []string
		for sc.Scan() && sc.Text() != "" {
			frame = append(frame, sc.Text())
		}
		if len(frame) != 3 || frame[0] != "id: "+itoa(e.ID) || frame[1] != "event: "+e.Type || frame[2] != "data: "+string(e.JSON) {
			t.Fatalf("frame %q, want event %d %s %s", frame, e.ID, e.Type, e.JSON)
		}
	}
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }
