package state_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/muster-registry/muster/api"
	"github.com/muster-registry/muster/internal/registry"
	"github.com/muster-registry/muster/internal/state"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func at(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

func boolp(b bool) *bool { return &b }

func key(ns, name string) state.Key { return state.Key{Namespace: ns, Name: name} }

func inst(ns, svc, id string, regIndex uint64) *state.Instance {
	return &state.Instance{Namespace: ns, Service: svc, ID: id, HeartbeatTimeout: 30, RegIndex: regIndex, Token: "token-of-" + id, RegisteredAt: t0}
}

// feedStore returns a store holding these nine events:
//
//	1 revision.register ns1/a   2 revision.default ns1/a   3 revision.register ns1/b
//	4 instance.join     ns2/a   5 instance.join    ns1/a   6 instance.remove   ns2/a
//	7 instance.update   ns1/a   8 revision.register ns2/c  9 revision.default  ns2/c
func feedStore(t *testing.T, retain int) *state.Store {
	t.Helper()
	st := state.New(retain, nil)
	steps := []func() error{
		func() error { _, _, err := st.RegisterRevision(at(1), key("ns1", "a"), "1.0.0", nil, nil); return err },
		func() error { _, _, err := st.RegisterRevision(at(2), key("ns1", "b"), "latest", nil, nil); return err },
		func() error { _, err := st.RegisterInstance(at(3), inst("ns2", "a", "web-1", 3), false); return err },
		func() error { _, err := st.RegisterInstance(at(4), inst("ns1", "a", "web-1", 4), false); return err },
		func() error {
			_, err := st.DeregisterInstance(at(5), state.InstanceKey{Namespace: "ns2", Service: "a", ID: "web-1"})
			return err
		},
		func() error {
			tags := []string{"x"}
			_, err := st.PatchInstance(at(6), state.InstanceKey{Namespace: "ns1", Service: "a", ID: "web-1"}, api.PatchInstanceRequest{Tags: &tags}, time.Time{}, time.Time{})
			return err
		},
		func() error { _, _, err := st.RegisterRevision(at(7), key("ns2", "c"), "2.0.0", nil, nil); return err },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	if st.Index() != 9 {
		t.Fatalf("feed has %d events, want 9", st.Index())
	}
	return st
}

func ids(evs []api.Event) []uint64 {
	out := []uint64{}
	for _, e := range evs {
		out = append(out, e.ID)
	}
	return out
}

func TestEventsWindowAndFilters(t *testing.T) {
	tests := []struct {
		name    string
		retain  int
		after   uint64
		filter  state.EventFilter
		limit   int
		want    []uint64
		wantErr error
	}{
		{"all", 0, 0, state.EventFilter{}, 100, []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9}, nil},
		{"after", 0, 4, state.EventFilter{}, 100, []uint64{5, 6, 7, 8, 9}, nil},
		{"after the newest", 0, 9, state.EventFilter{}, 100, []uint64{}, nil},
		{"after a future id", 0, 50, state.EventFilter{}, 100, []uint64{}, nil},
		{"limit", 0, 0, state.EventFilter{}, 3, []uint64{1, 2, 3}, nil},
		{"limit after", 0, 7, state.EventFilter{}, 1, []uint64{8}, nil},
		{"namespace", 0, 0, state.EventFilter{Namespace: "ns1"}, 100, []uint64{1, 2, 3, 5, 7}, nil},
		{"service in every namespace", 0, 0, state.EventFilter{Service: "a"}, 100, []uint64{1, 2, 4, 5, 6, 7}, nil},
		{"namespace and service", 0, 0, state.EventFilter{Namespace: "ns1", Service: "a"}, 100, []uint64{1, 2, 5, 7}, nil},
		{"one type", 0, 0, state.EventFilter{Types: []string{api.EventInstanceJoin}}, 100, []uint64{4, 5}, nil},
		{"any of two types", 0, 0, state.EventFilter{Types: []string{api.EventRevisionDefault, api.EventInstanceRemove}}, 100, []uint64{2, 6, 9}, nil},
		{"namespace and type", 0, 0, state.EventFilter{Namespace: "ns2", Types: []string{api.EventInstanceJoin}}, 100, []uint64{4}, nil},
		{"filter then limit", 0, 0, state.EventFilter{Namespace: "ns1"}, 2, []uint64{1, 2}, nil},
		{"filter matching nothing", 0, 0, state.EventFilter{Namespace: "ns3"}, 100, []uint64{}, nil},
		{"type matching nothing", 0, 0, state.EventFilter{Types: []string{api.EventInstanceTimeout}}, 100, []uint64{}, nil},
		{"window: after 0 starts at the oldest held", 4, 0, state.EventFilter{}, 100, []uint64{6, 7, 8, 9}, nil},
		{"window: after just before the oldest", 4, 5, state.EventFilter{}, 100, []uint64{6, 7, 8, 9}, nil},
		{"window: after inside", 4, 7, state.EventFilter{}, 100, []uint64{8, 9}, nil},
		{"window: after dropped events", 4, 4, state.EventFilter{}, 100, nil, registry.ErrCompacted},
		{"window: after 1", 4, 1, state.EventFilter{}, 100, nil, registry.ErrCompacted},
		{"window: filtered from the oldest held", 4, 0, state.EventFilter{Namespace: "ns1"}, 100, []uint64{7}, nil},
		{"window of one", 1, 0, state.EventFilter{}, 100, []uint64{9}, nil},
		{"window of one, after 8", 1, 8, state.EventFilter{}, 100, []uint64{9}, nil},
		{"window of one, after 7", 1, 7, state.EventFilter{}, 100, nil, registry.ErrCompacted},
		{"window larger than the feed", 20, 0, state.EventFilter{}, 100, []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9}, nil},
		{"window exactly the feed", 9, 0, state.EventFilter{}, 100, []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := feedStore(t, tc.retain)
			evs, last, err := st.Events(tc.after, tc.filter, tc.limit)
			if last != 9 {
				t.Errorf("newest = %d, want 9", last)
			}
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("error = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("error = %v", err)
			}
			if got := ids(evs); !slices.Equal(got, tc.want) {
				t.Fatalf("ids = %v, want %v", got, tc.want)
			}
			for _, e := range evs {
				if !tc.filter.Matches(&e) {
					t.Fatalf("event %d (%s %s/%s) does not match the filter", e.ID, e.Type, e.Namespace, e.Service)
				}
			}
		})
	}
}

func TestEventsContent(t *testing.T) {
	st := feedStore(t, 0)
	evs, _, err := st.Events(0, state.EventFilter{}, 100)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		typ, ns, svc string
		at           time.Time
	}{
		{api.EventRevisionRegister, "ns1", "a", at(1)},
		{api.EventRevisionDefault, "ns1", "a", at(1)},
		{api.EventRevisionRegister, "ns1", "b", at(2)},
		{api.EventInstanceJoin, "ns2", "a", at(3)},
		{api.EventInstanceJoin, "ns1", "a", at(4)},
		{api.EventInstanceRemove, "ns2", "a", at(5)},
		{api.EventInstanceUpdate, "ns1", "a", at(6)},
		{api.EventRevisionRegister, "ns2", "c", at(7)},
		{api.EventRevisionDefault, "ns2", "c", at(7)},
	}
	for i, w := range want {
		e := evs[i]
		if e.Type != w.typ || e.Namespace != w.ns || e.Service != w.svc || !e.Time.Equal(w.at) {
			t.Errorf("event %d = %s %s/%s at %s, want %s %s/%s at %s", e.ID, e.Type, e.Namespace, e.Service, e.Time, w.typ, w.ns, w.svc, w.at)
		}
	}
}

func TestEventRingWrapsManyTimes(t *testing.T) {
	const retain = 3
	st := state.New(retain, nil)
	k := key("ns", "svc")
	for i := range 20 {
		// Each write is one instance.join: new ids, no default changes.
		if _, err := st.RegisterInstance(at(i), inst("ns", "svc", "id-"+string(rune('a'+i)), uint64(i+1)), false); err != nil {
			t.Fatal(err)
		}
		n := uint64(i + 1)
		oldest := uint64(1)
		if n > retain {
			oldest = n - retain + 1
		}
		if got := st.OldestEvent(); got != oldest {
			t.Fatalf("after %d writes OldestEvent = %d, want %d", n, got, oldest)
		}
		evs, last, err := st.Events(0, state.EventFilter{}, 100)
		if err != nil || last != n {
			t.Fatalf("after %d writes: last %d, %v", n, last, err)
		}
		var want []uint64
		for id := oldest; id <= n; id++ {
			want = append(want, id)
		}
		if got := ids(evs); !slices.Equal(got, want) {
			t.Fatalf("after %d writes ids = %v, want %v", n, got, want)
		}
		for _, e := range evs {
			if !e.Time.Equal(at(int(e.ID - 1))) {
				t.Fatalf("event %d has the time of another event: %s", e.ID, e.Time)
			}
		}
	}
	if _, _, ok := st.Instances(k); !ok {
		t.Fatal("service lost")
	}
}

func TestScanTo(t *testing.T) {
	ev := func(ids ...uint64) []api.Event {
		out := make([]api.Event, len(ids))
		for i, id := range ids {
			out[i].ID = id
		}
		return out
	}
	tests := []struct {
		name          string
		events        []api.Event
		limit         int
		after, newest uint64
		want          uint64
	}{
		{"nothing new", nil, 10, 9, 9, 9},
		{"filter skipped everything: move to the newest", nil, 10, 3, 9, 9},
		{"fewer than the limit: the newest", ev(5, 7), 10, 3, 9, 9},
		{"limit reached: the last returned", ev(5, 7), 2, 3, 9, 7},
		{"more than the limit (defensive)", ev(5, 7, 8), 2, 3, 9, 8},
		{"limit reached by the newest", ev(8, 9), 2, 7, 9, 9},
		{"after in the future stays", nil, 10, 20, 9, 20},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := state.ScanTo(tc.events, tc.limit, tc.after, tc.newest); got != tc.want {
				t.Fatalf("ScanTo = %d, want %d", got, tc.want)
			}
		})
	}
}

// TestScanToFollowsAFilteredFeed reads a filtered feed page by page, as the
// HTTP handler does, and checks that it sees every matching event once.
func TestScanToFollowsAFilteredFeed(t *testing.T) {
	st := feedStore(t, 0)
	f := state.EventFilter{Service: "a"}
	var seen []uint64
	after := uint64(0)
	for range 20 {
		evs, newest, err := st.Events(after, f, 2)
		if err != nil {
			t.Fatal(err)
		}
		seen = append(seen, ids(evs)...)
		next := state.ScanTo(evs, 2, after, newest)
		if next == after {
			break
		}
		after = next
	}
	if want := []uint64{1, 2, 4, 5, 6, 7}; !slices.Equal(seen, want) {
		t.Fatalf("followed %v, want %v", seen, want)
	}
	if after != 9 {
		t.Fatalf("follower stopped at %d, want 9", after)
	}
}
