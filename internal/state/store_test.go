package state_test

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/muster-registry/muster/api"
	"github.com/muster-registry/muster/internal/registry"
	"github.com/muster-registry/muster/internal/state"
)

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestWatchClosesOnWrite(t *testing.T) {
	k := key("ns", "svc")
	ik := state.InstanceKey{Namespace: "ns", Service: "svc", ID: "web-1"}
	tests := []struct {
		name       string
		write      func(st *state.Store) error
		wantClosed bool
	}{
		{"new revision", func(st *state.Store) error {
			_, _, err := st.RegisterRevision(at(10), k, "3.0.0", nil, nil)
			return err
		}, true},
		{"explicit false on the default", func(st *state.Store) error {
			_, _, err := st.RegisterRevision(at(10), k, "1.0.0", boolp(false), nil)
			return err
		}, true},
		{"explicit true on the default", func(st *state.Store) error {
			_, _, err := st.RegisterRevision(at(10), k, "1.0.0", boolp(true), nil)
			return err
		}, false},
		{"re-post without change", func(st *state.Store) error {
			_, _, err := st.RegisterRevision(at(10), k, "1.0.0", nil, nil)
			return err
		}, false},
		{"delete revision", func(st *state.Store) error { return st.DeleteRevision(at(10), k, "1.0.0") }, true},
		{"delete missing revision", func(st *state.Store) error {
			if err := st.DeleteRevision(at(10), k, "9.9.9"); !errors.Is(err, registry.ErrNotFound) {
				return fmt.Errorf("got %v, want not found", err)
			}
			return nil
		}, false},
		{"register instance", func(st *state.Store) error {
			_, err := st.RegisterInstance(at(10), inst("ns", "svc", "web-2", 10), false)
			return err
		}, true},
		{"refused register", func(st *state.Store) error {
			if _, err := st.RegisterInstance(at(10), inst("ns", "svc", "web-1", 10), false); !errors.Is(err, registry.ErrInstanceExists) {
				return fmt.Errorf("got %v, want instance exists", err)
			}
			return nil
		}, false},
		{"patch", func(st *state.Store) error {
			tags := []string{"x"}
			_, err := st.PatchInstance(at(10), ik, api.PatchInstanceRequest{Tags: &tags}, time.Time{}, time.Time{})
			return err
		}, true},
		{"empty patch", func(st *state.Store) error {
			_, err := st.PatchInstance(at(10), ik, api.PatchInstanceRequest{}, time.Time{}, time.Time{})
			return err
		}, false},
		{"deregister", func(st *state.Store) error { _, err := st.DeregisterInstance(at(10), ik); return err }, true},
		{"expire", func(st *state.Store) error {
			if n := st.ExpireInstances(at(10), []state.Expiry{{Key: ik, RegIndex: 2, Deadline: at(9)}}); n != 1 {
				return fmt.Errorf("expired %d, want 1", n)
			}
			return nil
		}, true},
		{"expire a stale registration", func(st *state.Store) error {
			if n := st.ExpireInstances(at(10), []state.Expiry{{Key: ik, RegIndex: 1, Deadline: at(9)}}); n != 0 {
				return fmt.Errorf("expired %d, want 0", n)
			}
			return nil
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := state.New(0, nil)
			if _, _, err := st.RegisterRevision(at(0), k, "1.0.0", nil, nil); err != nil {
				t.Fatal(err)
			}
			if _, err := st.RegisterInstance(at(1), inst("ns", "svc", "web-1", 2), false); err != nil {
				t.Fatal(err)
			}
			w := st.Watch()
			before := st.Index()
			if closed(w) {
				t.Fatal("watch closed before any write")
			}
			if err := tc.write(st); err != nil {
				t.Fatal(err)
			}
			if got := closed(w); got != tc.wantClosed {
				t.Fatalf("watch closed = %v, want %v", got, tc.wantClosed)
			}
			if moved := st.Index() != before; moved != tc.wantClosed {
				t.Fatalf("index moved %d → %d; a watcher is woken exactly when it moves", before, st.Index())
			}
			if tc.wantClosed && closed(st.Watch()) {
				t.Fatal("the next Watch channel is already closed")
			}
		})
	}
}

func TestWatchClosesOnRestore(t *testing.T) {
	src := feedStore(t, 0)
	var buf bytes.Buffer
	if _, err := src.Snapshot().WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	st := state.New(0, nil)
	w := st.Watch()
	if err := st.Restore(&buf); err != nil {
		t.Fatal(err)
	}
	if !closed(w) {
		t.Fatal("Restore did not wake watchers")
	}
	if st.Index() != 9 {
		t.Fatalf("restored index = %d, want 9", st.Index())
	}
}

// recorder is an Observer that writes down every call.
type recorder struct{ calls []string }

func (r *recorder) InstanceAdded(i *state.Instance) {
	r.calls = append(r.calls, fmt.Sprintf("add %s/%s@%d/%ds", i.Service, i.ID, i.RegIndex, i.HeartbeatTimeout))
}

func (r *recorder) InstanceRemoved(i *state.Instance) {
	r.calls = append(r.calls, fmt.Sprintf("remove %s/%s@%d", i.Service, i.ID, i.RegIndex))
}

func (r *recorder) Reset() { r.calls = append(r.calls, "reset") }

func (r *recorder) take() []string {
	c := r.calls
	r.calls = nil
	return c
}

func TestObserverOrder(t *testing.T) {
	rec := &recorder{}
	st := state.New(0, rec)
	web1 := state.InstanceKey{Namespace: "ns", Service: "a", ID: "web-1"}
	web2 := state.InstanceKey{Namespace: "ns", Service: "a", ID: "web-2"}
	timeout := func(n int) *int { return &n }
	steps := []struct {
		name string
		do   func() error
		want []string
	}{
		{"register", func() error { _, err := st.RegisterInstance(at(1), inst("ns", "a", "web-1", 1), false); return err },
			[]string{"add a/web-1@1/30s"}},
		{"refused POST", func() error {
			if _, err := st.RegisterInstance(at(2), inst("ns", "a", "web-1", 2), false); !errors.Is(err, registry.ErrInstanceExists) {
				return fmt.Errorf("got %v, want ErrInstanceExists", err)
			}
			return nil
		}, nil},
		{"PUT replaces: old removed before new added", func() error {
			replaced, err := st.RegisterInstance(at(3), inst("ns", "a", "web-1", 3), true)
			if err == nil && !replaced {
				err = errors.New("not reported as replaced")
			}
			return err
		}, []string{"remove a/web-1@1", "add a/web-1@3/30s"}},
		{"patch without a new timeout", func() error {
			tags := []string{"x"}
			_, err := st.PatchInstance(at(4), web1, api.PatchInstanceRequest{Tags: &tags}, time.Time{}, time.Time{})
			return err
		}, []string{"add a/web-1@3/30s"}}, // the new record, same registration
		{"patch with the same timeout", func() error {
			_, err := st.PatchInstance(at(4), web1, api.PatchInstanceRequest{HeartbeatTimeout: timeout(30)}, time.Time{}, time.Time{})
			return err
		}, []string{"add a/web-1@3/30s"}},
		{"patch with a new timeout: same registration", func() error {
			_, err := st.PatchInstance(at(5), web1, api.PatchInstanceRequest{HeartbeatTimeout: timeout(10)}, time.Time{}, time.Time{})
			return err
		}, []string{"add a/web-1@3/10s"}},
		{"patch of a missing instance", func() error {
			if _, err := st.PatchInstance(at(5), web2, api.PatchInstanceRequest{HeartbeatTimeout: timeout(10)}, time.Time{}, time.Time{}); !errors.Is(err, registry.ErrNotFound) {
				return fmt.Errorf("got %v, want ErrNotFound", err)
			}
			return nil
		}, nil},
		{"second instance", func() error { _, err := st.RegisterInstance(at(6), inst("ns", "a", "web-2", 6), false); return err },
			[]string{"add a/web-2@6/30s"}},
		{"stale expiry", func() error { st.ExpireInstances(at(7), []state.Expiry{{Key: web2, RegIndex: 5}}); return nil }, nil},
		{"expiry", func() error { st.ExpireInstances(at(8), []state.Expiry{{Key: web2, RegIndex: 6}}); return nil },
			[]string{"remove a/web-2@6"}},
		{"deregister", func() error { _, err := st.DeregisterInstance(at(9), web1); return err },
			[]string{"remove a/web-1@3"}},
		{"deregister again", func() error {
			if _, err := st.DeregisterInstance(at(9), web1); !errors.Is(err, registry.ErrNotFound) {
				return fmt.Errorf("got %v, want ErrNotFound", err)
			}
			return nil
		}, nil},
		{"revisions are not instances", func() error { _, _, err := st.RegisterRevision(at(10), key("ns", "a"), "1.0.0", nil, nil); return err }, nil},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got := rec.take(); !slices.Equal(got, s.want) {
			t.Fatalf("%s: observer got %q, want %q", s.name, got, s.want)
		}
	}

	// A restore resets the observer, then adds every restored instance.
	src := state.New(0, nil)
	for i, id := range []string{"x-1", "x-2", "x-3"} {
		if _, err := src.RegisterInstance(at(20+i), inst("ns", "b", id, uint64(20+i)), false); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if _, err := src.Snapshot().WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	if err := st.Restore(&buf); err != nil {
		t.Fatal(err)
	}
	got := rec.take()
	if len(got) != 4 || got[0] != "reset" {
		t.Fatalf("restore: observer got %q, want reset first then three adds", got)
	}
	slices.Sort(got[1:])
	if want := []string{"add b/x-1@20/30s", "add b/x-2@21/30s", "add b/x-3@22/30s"}; !slices.Equal(got[1:], want) {
		t.Fatalf("restore: observer added %q, want %q", got[1:], want)
	}
}

// TestRestoreRejectsBadJSONSnapshots feeds Restore broken snapshots of the
// JSON format (version 1), which it still reads.
func TestRestoreRejectsBadJSONSnapshots(t *testing.T) {
	good := jsonSnapshotOf(t, feedStore(t, 0))
	lines := strings.SplitAfter(string(good), "\n")
	tests := []struct {
		name  string
		input string
	}{
		{"empty", ""},
		{"not JSON", "hello"},
		{"version 2 in JSON", strings.Replace(string(good), `"version":1`, `"version":2`, 1)},
		{"version 0", strings.Replace(string(good), `"version":1`, `"version":0`, 1)},
		{"header only", lines[0]},
		{"truncated in the header", string(good[:10])},
		{"truncated in a service", strings.Join(lines[:2], "") + lines[2][:len(lines[2])/2]},
		{"truncated in an event", string(good[:len(good)-20])},
		{"last event missing", strings.Join(lines[:len(lines)-2], "")},
		{"header counts more services", strings.Replace(string(good), `"services":`, `"services":1`, 1)},
		{"event ids not contiguous", strings.Replace(string(good), `{"id":5,`, `{"id":6,`, 1)},
		{"wrong type in a service", strings.Join(lines[:1], "") + `{"namespace":7}` + "\n" + strings.Join(lines[2:], "")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.input == string(good) {
				t.Fatal("the case does not change the snapshot")
			}
			rec := &recorder{}
			st := state.New(0, rec)
			if _, err := st.RegisterInstance(at(1), inst("ns", "keep", "me", 1), false); err != nil {
				t.Fatal(err)
			}
			rec.take()
			before := snapshotOf(t, st)
			w := st.Watch()

			if err := st.Restore(strings.NewReader(tc.input)); err == nil {
				t.Fatal("Restore accepted a bad snapshot")
			}
			unchangedByFailedRestore(t, st, rec, before, w)
		})
	}
	// The good snapshot restores, so the cases above fail for their own reason.
	if err := state.New(0, nil).Restore(bytes.NewReader(good)); err != nil {
		t.Fatalf("the good snapshot: %v", err)
	}
}

// unchangedByFailedRestore checks that a Restore that failed left st as
// it was (before is its snapshot then), told the observer nothing and woke
// no watcher.
func unchangedByFailedRestore(t *testing.T, st *state.Store, rec *recorder, before []byte, w <-chan struct{}) {
	t.Helper()
	if after := snapshotOf(t, st); !bytes.Equal(before, after) {
		t.Fatalf("a failed Restore changed the store:\nbefore %q\nafter  %q", before, after)
	}
	if calls := rec.take(); len(calls) != 0 {
		t.Fatalf("a failed Restore told the observer %q", calls)
	}
	if closed(w) {
		t.Fatal("a failed Restore woke watchers")
	}
}

func jsonSnapshotOf(t *testing.T, st *state.Store) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := st.Snapshot().WriteJSONTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func snapshotOf(t *testing.T, st *state.Store) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := st.Snapshot().WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestSnapshotIntoSmallerRetention(t *testing.T) {
	src := feedStore(t, 0)
	dst := state.New(3, nil)
	if err := dst.Restore(bytes.NewReader(snapshotOf(t, src))); err != nil {
		t.Fatal(err)
	}
	evs, last, err := dst.Events(0, state.EventFilter{}, 100)
	if err != nil || last != 9 || !slices.Equal(ids(evs), []uint64{7, 8, 9}) {
		t.Fatalf("restored into retain 3: %v, last %d, %v", ids(evs), last, err)
	}
	if _, _, err := dst.Events(5, state.EventFilter{}, 100); !errors.Is(err, registry.ErrCompacted) {
		t.Fatalf("Events(5) = %v, want ErrCompacted", err)
	}
	// Writes continue the ids.
	if _, _, err := dst.RegisterRevision(at(30), key("ns9", "z"), "latest", nil, nil); err != nil {
		t.Fatal(err)
	}
	evs, _, _ = dst.Events(0, state.EventFilter{}, 100)
	if !slices.Equal(ids(evs), []uint64{8, 9, 10}) {
		t.Fatalf("after a write: %v", ids(evs))
	}
}

func TestDefaultRule(t *testing.T) {
	type op struct {
		tag      string
		explicit *bool
		del      bool
	}
	post := func(tag string) op { return op{tag: tag} }
	postDefault := func(tag string, d bool) op { return op{tag: tag, explicit: boolp(d)} }
	del := func(tag string) op { return op{tag: tag, del: true} }
	tests := []struct {
		name  string
		input []op
		want  string // the default afterwards, "" for none
	}{
		{"first semver", []op{post("1.2.9")}, "1.2.9"},
		{"greater semver takes over", []op{post("1.2.9"), post("1.10.0")}, "1.10.0"},
		{"smaller semver does not", []op{post("1.10.0"), post("1.9.0")}, "1.10.0"},
		{"release over its prerelease", []op{post("2.0.0-rc.1"), post("2.0.0")}, "2.0.0"},
		{"prerelease under its release", []op{post("2.0.0"), post("2.0.0-rc.1")}, "2.0.0"},
		{"leading v", []op{post("1.10.0"), post("v2.0.0")}, "v2.0.0"},
		{"equal precedence is not greater", []op{post("1.0.0"), post("v1.0.0"), post("1.0.0+b")}, "1.0.0"},
		{"non-semver never by rule", []op{post("latest"), post("main")}, ""},
		{"non-semver does not block semver", []op{post("latest"), post("0.1.0")}, "0.1.0"},
		{"explicit true on non-semver", []op{post("1.0.0"), postDefault("latest", true)}, "latest"},
		{"explicit true on an older version", []op{post("2.0.0"), postDefault("1.0.0", true)}, "1.0.0"},
		{"explicit false on the greatest", []op{post("1.0.0"), postDefault("2.0.0", false)}, "1.0.0"},
		{"explicit false on the first", []op{postDefault("1.0.0", false)}, ""},
		{"explicit false on the default hands over", []op{post("1.0.0"), post("2.0.0"), postDefault("2.0.0", false)}, "1.0.0"},
		{"explicit false on the default skips non-semver", []op{post("latest"), post("1.0.0"), postDefault("1.0.0", false)}, ""},
		{"explicit false on the default never picks an explicit non-default", []op{post("1.0.0"), postDefault("3.0.0", false), postDefault("2.0.0", true), postDefault("2.0.0", false)}, "1.0.0"},
		{"explicit false is remembered for later registrations", []op{post("1.0.0"), postDefault("3.0.0", false), post("2.0.0")}, "2.0.0"},
		{"explicit true clears a remembered false", []op{post("1.0.0"), postDefault("3.0.0", false), postDefault("3.0.0", true), post("2.0.0")}, "3.0.0"},
		{"explicit false on a non-default changes nothing", []op{post("1.0.0"), post("2.0.0"), postDefault("1.0.0", false)}, "2.0.0"},
		{"explicit true on the default changes nothing", []op{post("1.0.0"), postDefault("1.0.0", true)}, "1.0.0"},
		{"re-post without is_default changes nothing", []op{post("2.0.0"), postDefault("1.0.0", true), post("2.0.0")}, "1.0.0"},
		{"re-post does not revive a default", []op{post("1.0.0"), postDefault("1.0.0", false), post("1.0.0")}, ""},
		{"a later greater semver overrides an explicit choice", []op{post("1.0.0"), postDefault("latest", true), post("2.0.0")}, "2.0.0"},
		{"deleting the default: greatest remaining", []op{post("1.0.0"), post("3.0.0"), post("2.0.0"), del("3.0.0")}, "2.0.0"},
		{"deleting the default: never an explicitly non-default one", []op{post("1.0.0"), postDefault("2.0.0", false), postDefault("latest", true), del("latest")}, "1.0.0"},
		{"deleting the default: none when no semver remains", []op{post("latest"), post("1.0.0"), del("1.0.0")}, ""},
		{"deleting a non-default keeps the default", []op{post("1.0.0"), post("2.0.0"), del("1.0.0")}, "2.0.0"},
		{"deleting the default: ties go to the smallest tag", []op{post("v1.0.0"), post("1.0.0+b"), post("2.0.0"), del("2.0.0")}, "1.0.0+b"},
	}
	k := key("ns", "svc")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := state.New(0, nil)
			for i, o := range tc.input {
				var err error
				if o.del {
					err = st.DeleteRevision(at(i), k, o.tag)
				} else {
					_, _, err = st.RegisterRevision(at(i), k, o.tag, o.explicit, nil)
				}
				if err != nil {
					t.Fatalf("op %d: %v", i, err)
				}
			}
			revs, _, err := st.Revisions(k)
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			for _, r := range revs {
				if r.IsDefault {
					if got != "" {
						t.Fatalf("two defaults: %q and %q", got, r.RevisionTag)
					}
					got = r.RevisionTag
				}
			}
			if got != tc.want {
				t.Fatalf("default = %q, want %q", got, tc.want)
			}
			def, _, err := st.Revision(k, "")
			if tc.want == "" {
				if !errors.Is(err, registry.ErrNotFound) {
					t.Fatalf("Revision(default) = %+v, %v; want not found", def, err)
				}
			} else if err != nil || def.RevisionTag != tc.want {
				t.Fatalf("Revision(default) = %+v, %v", def, err)
			}
			// The feed tells the same story: the last revision.default event names it.
			evs, _, _ := st.Events(0, state.EventFilter{Types: []string{api.EventRevisionDefault}}, 1000)
			last := ""
			if len(evs) > 0 {
				last = string(evs[len(evs)-1].Payload)
			}
			if want := fmt.Sprintf(`"revision_tag":%q`, tc.want); tc.want != "" && !strings.Contains(last, want) {
				t.Fatalf("last revision.default event %s does not name %q", last, tc.want)
			}
		})
	}
}

func TestRevisionReads(t *testing.T) {
	st := state.New(0, nil)
	k := key("ns", "svc")
	if _, _, err := st.Revisions(k); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("Revisions of an unknown service = %v", err)
	}
	for i, tag := range []string{"latest", "1.9.0", "2.0.0-rc.1", "1.10.0", "main", "2.0.0"} {
		if _, _, err := st.RegisterRevision(at(i), k, tag, nil, map[string]string{"i": fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	revs, idx, err := st.Revisions(k)
	if err != nil || idx != st.Index() {
		t.Fatalf("Revisions: index %d, %v", idx, err)
	}
	var tags []string
	for _, r := range revs {
		tags = append(tags, r.RevisionTag)
	}
	if want := []string{"2.0.0", "2.0.0-rc.1", "1.10.0", "1.9.0", "latest", "main"}; !slices.Equal(tags, want) {
		t.Fatalf("order = %q, want %q", tags, want)
	}
	// Re-posting keeps created_at and metadata; the same metadata is fine,
	// other metadata is a conflict that changes nothing.
	rev, created, err := st.RegisterRevision(at(50), k, "1.9.0", nil, nil)
	if err != nil || created || !rev.CreatedAt.Equal(at(1)) || rev.Metadata["i"] != "1" {
		t.Fatalf("re-post = %+v, created %v, %v", rev, created, err)
	}
	if _, _, err := st.RegisterRevision(at(51), k, "1.9.0", nil, map[string]string{"i": "1"}); err != nil {
		t.Fatalf("re-post with the same metadata: %v", err)
	}
	idx = st.Index()
	for _, md := range []map[string]string{{"new": "yes"}, {}} {
		if _, _, err := st.RegisterRevision(at(51), k, "1.9.0", nil, md); !errors.Is(err, registry.ErrConflict) {
			t.Fatalf("re-post with metadata %v = %v, want a conflict", md, err)
		}
	}
	if rev, _, _ := st.Revision(k, "1.9.0"); rev.Metadata["i"] != "1" || len(rev.Metadata) != 1 || st.Index() != idx {
		t.Fatalf("a refused re-post changed the revision: %+v (index %d → %d)", rev, idx, st.Index())
	}
	if _, _, err := st.Revision(k, "3.0.0"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("Revision of a missing tag = %v", err)
	}
	if err := st.DeleteRevision(at(60), key("ns", "other"), "1.0.0"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("DeleteRevision of an unknown service = %v", err)
	}
	// Deleting every revision of a service without instances forgets it.
	for _, r := range revs {
		if err := st.DeleteRevision(at(70), k, r.RevisionTag); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := st.Revisions(k); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("Revisions of an emptied service = %v", err)
	}
	if nss, svcs, nrevs, insts := st.Counts(); nss+svcs+nrevs+insts != 0 {
		t.Fatalf("Counts = %d %d %d %d, want zeros", nss, svcs, nrevs, insts)
	}
}

func TestListings(t *testing.T) {
	st := state.New(0, nil)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, _, err := st.RegisterRevision(at(1), key("ns1", "b"), "1.0.0", nil, nil)
	must(err)
	_, _, err = st.RegisterRevision(at(2), key("ns1", "b"), "0.9.0", nil, nil)
	must(err)
	_, err = st.RegisterInstance(at(3), inst("ns1", "b", "z", 3), false)
	must(err)
	_, err = st.RegisterInstance(at(4), inst("ns1", "b", "y", 4), false)
	must(err)
	_, err = st.RegisterInstance(at(5), inst("ns1", "a", "x", 5), false)
	must(err)
	_, err = st.RegisterInstance(at(6), inst("ns2", "a", "w", 6), false)
	must(err)

	sums, idx := st.Services("ns1")
	if idx != st.Index() || len(sums) != 2 || sums[0].Name != "a" || sums[1].Name != "b" {
		t.Fatalf("Services(ns1) = %+v at %d", sums, idx)
	}
	if sums[0].Default != nil || sums[1].Default == nil || sums[1].Default.RevisionTag != "1.0.0" || sums[1].Revisions != 2 {
		t.Fatalf("Services(ns1) defaults: %+v", sums)
	}
	// The instances come in no particular order (nothing is sorted under
	// the lock): all of them, once each.
	ids := []string{sums[1].Instances[0].ID, sums[1].Instances[1].ID}
	if slices.Sort(ids); len(sums[1].Instances) != 2 || !slices.Equal(ids, []string{"y", "z"}) {
		t.Fatalf("instances of ns1/b: %q", ids)
	}
	if all, _ := st.Services(""); len(all) != 3 || all[2].Namespace != "ns2" {
		t.Fatalf("Services(all) = %+v", all)
	}

	nsi, _ := st.NamespaceInstances("ns1")
	var got []string
	for _, ni := range nsi {
		got = append(got, ni.Service+"/"+ni.ID+":"+ni.DefaultTag)
	}
	if want := []string{"a/x:", "b/y:1.0.0", "b/z:1.0.0"}; !slices.Equal(got, want) {
		t.Fatalf("NamespaceInstances = %q, want %q", got, want)
	}

	n := 0
	st.AllInstances(func(*state.Instance) { n++ })
	if nss, svcs, revs, insts := st.Counts(); nss != 2 || svcs != 3 || revs != 2 || insts != 4 || n != 4 {
		t.Fatalf("Counts = %d %d %d %d (AllInstances %d)", nss, svcs, revs, insts, n)
	}
}

func TestEventInstance(t *testing.T) {
	i := inst("ns", "svc", "web-1", 7)
	i.HeartbeatTimeout = 12
	v := state.EventInstance(i, at(100), at(112))
	if v.Status != api.StatusPassing || !v.LastHeartbeatAt.Equal(at(100)) || !v.ExpiresAt.Equal(at(112)) || !v.RegisteredAt.Equal(t0) {
		t.Fatalf("EventInstance = %+v", v)
	}
	if v.Tags == nil || v.Endpoints == nil || v.Metadata == nil {
		t.Fatalf("EventInstance leaves nil lists, which encode as null: %+v", v)
	}
}

// An expiry batch writes one instance.timeout per live registration it
// names, in the batch's order, each with its own payload and frame (the
// payloads are encoded one after the other into one buffer first).
func TestExpireInstancesEvents(t *testing.T) {
	st := state.New(0, nil)
	var items []state.Expiry
	for i, id := range []string{"b-1", "a-2", "c-3", "gone"} {
		in := inst("ns", "svc", id, uint64(10+i))
		if id != "gone" {
			if _, err := st.RegisterInstance(at(1), in, false); err != nil {
				t.Fatal(err)
			}
		}
		items = append(items, state.Expiry{Key: in.Key(), RegIndex: in.RegIndex, Deadline: at(5).Add(time.Duration(i) * time.Millisecond)})
	}
	after := st.Index()
	if n := st.ExpireInstances(at(6), items); n != 3 {
		t.Fatalf("expired %d, want 3", n)
	}
	evs, _, err := st.EncodedEvents(after, state.EventFilter{Types: []string{api.EventInstanceTimeout}}, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 3 {
		t.Fatalf("%d timeout events, want 3", len(evs))
	}
	for i, e := range evs {
		want := fmt.Sprintf(`{"id":%d,"type":"instance.timeout","namespace":"ns","service":"svc","time":"%s","payload":{"id":"%s","revision_tag":"","deadline":"%s"}}`,
			after+uint64(i)+1, items[i].Deadline.Format(time.RFC3339Nano), items[i].Key.ID, items[i].Deadline.Format(time.RFC3339Nano))
		if string(e.JSON) != want {
			t.Errorf("event %d:\n got %s\nwant %s", i, e.JSON, want)
		}
		if frame := fmt.Sprintf("id: %d\nevent: instance.timeout\ndata: %s\n\n", e.ID, want); string(e.Frame) != frame {
			t.Errorf("frame %d: %q", i, e.Frame)
		}
	}
	plain, _, _ := st.Events(after, state.EventFilter{Types: []string{api.EventInstanceTimeout}}, 100)
	for i, e := range plain {
		if want := fmt.Sprintf(`{"id":"%s","revision_tag":"","deadline":"%s"}`, items[i].Key.ID, items[i].Deadline.Format(time.RFC3339Nano)); string(e.Payload) != want {
			t.Errorf("payload %d: %s, want %s", i, e.Payload, want)
		}
	}
}
