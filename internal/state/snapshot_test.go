package state_test

import (
	"bytes"
	"encoding/json"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/muster-registry/muster/api"
	"github.com/muster-registry/muster/internal/state"
)

// richStore returns a store that uses every field a snapshot holds.
func richStore(t *testing.T) *state.Store {
	t.Helper()
	st := state.New(0, nil)
	k := key("ns", "svc")
	no := false
	if _, _, err := st.RegisterRevision(at(1), k, "1.0.0", nil, map[string]string{"git": "abc", "<&>": "é\u2028"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.RegisterRevision(at(2), k, "2.0.0-rc.1", &no, map[string]string{}); err != nil {
		t.Fatal(err)
	}
	p := &api.Policy{DefaultRule: api.RuleLatestSemver, Routes: []api.PolicyRoute{{Name: "ab", Split: []api.SplitEntry{{Revision: "1.0.0", Weight: 1}}}}}
	if err := st.SetPolicy(at(3), k, p); err != nil {
		t.Fatal(err)
	}
	if _, err := st.SetDefinition(at(4), k, &api.Definition{Endpoints: []api.Endpoint{{Name: "index", Backends: []string{"ns/db"}}}}); err != nil {
		t.Fatal(err)
	}
	insts := []*state.Instance{
		{Namespace: "ns", Service: "svc", ID: "web-1", RevisionTag: "1.0.0", Address: "10.0.0.1", Port: 8080,
			PublicURL: "https://x.example/a?b=<1>", Endpoints: []string{"users", "orders"}, Tags: []string{"http", "zone-a"},
			Metadata: state.MetadataOf(map[string]string{"region": "eu", "odd": "a\"b\\c\n\x01"}), HeartbeatTimeout: 30,
			RegisteredAt: at(5).In(time.FixedZone("x", -7*3600)), RegIndex: 5, Token: "token-1"},
		{Namespace: "ns", Service: "svc", ID: "web-2", Port: -1, Tags: []string{"http", "zone-a"}, HeartbeatTimeout: 120,
			RegisteredAt: at(6).Add(123 * time.Nanosecond), RegIndex: 6, Token: "token-2"},
		{Namespace: "ns", Service: "db", ID: "db-1", Tags: []string{}, Metadata: state.Metadata{}, HeartbeatTimeout: 3, RegIndex: 7, Token: "token-3"},
	}
	for _, inst := range insts {
		if _, err := st.RegisterInstance(at(int(inst.RegIndex)), inst, false); err != nil {
			t.Fatal(err)
		}
	}
	return st
}

// TestSnapshotFormatsRestoreEqual writes one state in the binary format and
// in the JSON format of version 1, and checks that both restore to the same
// state (their binary snapshots are equal byte for byte) and the same reads.
func TestSnapshotFormatsRestoreEqual(t *testing.T) {
	src := richStore(t)
	for _, tc := range []struct {
		name  string
		write func(*testing.T, *state.Store) []byte
	}{
		// The JSON writer escapes <, > and & in event payloads, so a state
		// restored from it is compared through that writer again.
		{"binary", snapshotOf}, {"json v1", jsonSnapshotOf},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.write(t, src)
			dst := state.New(0, nil)
			if err := dst.Restore(bytes.NewReader(want)); err != nil {
				t.Fatal(err)
			}
			if got := tc.write(t, dst); !bytes.Equal(got, want) {
				t.Fatalf("restored state differs:\n got %q\nwant %q", got, want)
			}
			for _, id := range []state.InstanceKey{{Namespace: "ns", Service: "svc", ID: "web-1"}, {Namespace: "ns", Service: "db", ID: "db-1"}} {
				a, _, errA := src.Instance(id)
				b, _, errB := dst.Instance(id)
				if errA != nil || errB != nil || !viewsEqual(state.InstanceView(a, true), state.InstanceView(b, true)) {
					t.Fatalf("%s: restored %+v (%v), want %+v (%v)", id, b, errB, a, errA)
				}
			}
			ea, la, _ := src.Events(0, state.EventFilter{}, 100)
			eb, lb, _ := dst.Events(0, state.EventFilter{}, 100)
			if la != lb || len(ea) != len(eb) {
				t.Fatalf("events: %d up to %d, want %d up to %d", len(eb), lb, len(ea), la)
			}
			for i := range ea {
				if ea[i].ID != eb[i].ID || !ea[i].Time.Equal(eb[i].Time) || !json.Valid(eb[i].Payload) {
					t.Fatalf("event %d: %+v, want %+v", i, eb[i], ea[i])
				}
			}
		})
	}
}

func viewsEqual(a, b api.Instance) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && bytes.Equal(ja, jb)
}

// TestRestoreRejectsBadBinarySnapshots feeds Restore every truncation of a
// binary snapshot and other damage: each is refused, naming the problem,
// and leaves the store as it was.
func TestRestoreRejectsBadBinarySnapshots(t *testing.T) {
	good := snapshotOf(t, richStore(t))
	tests := []struct {
		name, input, wantErr string
	}{
		{"empty", "", "not a Muster snapshot"},
		{"other file", "PK\x03\x04 a zip file", "not a Muster snapshot"},
		{"newer version", "MUSTERSS\x03" + string(good[9:]), "version 3 is not supported"},
		{"data after the end", string(good) + "\x00", "data after the last service"},
		{"event ids not contiguous", string(bytes.Replace(good, []byte("\x01\x11revision.register"), []byte("\x02\x11revision.register"), 1)), "has id 2, want 1"},
	}
	for n := range len(good) {
		tests = append(tests, struct{ name, input, wantErr string }{"truncated", string(good[:n]), ""})
	}
	for _, tc := range tests {
		if tc.input == string(good) {
			t.Fatalf("%s: the case does not change the snapshot", tc.name)
		}
		rec := &recorder{}
		st := state.New(0, rec)
		if _, err := st.RegisterInstance(at(1), inst("ns", "keep", "me", 1), false); err != nil {
			t.Fatal(err)
		}
		rec.take()
		before := snapshotOf(t, st)
		w := st.Watch()
		err := st.Restore(strings.NewReader(tc.input))
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Fatalf("%s (%d bytes): Restore = %v, want an error saying %q", tc.name, len(tc.input), err, tc.wantErr)
		}
		unchangedByFailedRestore(t, st, rec, before, w)
	}
}

// TestRestoreSurvivesDamagedBytes flips each byte of a binary snapshot:
// Restore never panics, and what it accepts is a state it can snapshot.
func TestRestoreSurvivesDamagedBytes(t *testing.T) {
	good := snapshotOf(t, richStore(t))
	for i := range good {
		bad := bytes.Clone(good)
		bad[i] ^= 0xff
		st := state.New(0, nil)
		if err := st.Restore(bytes.NewReader(bad)); err == nil {
			snapshotOf(t, st)
		}
	}
}

// TestEncodedEventsMatchEvents checks that each event's stored line is the
// encoding of the event, id included, as written and after a restore from
// either format (the lines are made ahead of the ring on a restore).
func TestEncodedEventsMatchEvents(t *testing.T) {
	src := richStore(t)
	stores := map[string]*state.Store{"written": src}
	for name, snap := range map[string][]byte{"binary": snapshotOf(t, src), "json v1": jsonSnapshotOf(t, src)} {
		dst := state.New(4, nil) // fewer than the feed holds: only the newest are kept
		if err := dst.Restore(bytes.NewReader(snap)); err != nil {
			t.Fatal(err)
		}
		stores[name] = dst
	}
	for name, st := range stores {
		evs, _, err := st.Events(0, state.EventFilter{}, 100)
		if err != nil {
			t.Fatal(err)
		}
		enc, _, err := st.EncodedEvents(0, state.EventFilter{}, 100)
		if err != nil || len(enc) != len(evs) || len(evs) == 0 {
			t.Fatalf("%s: %d encoded, %d events, %v", name, len(enc), len(evs), err)
		}
		for i, e := range evs {
			var want bytes.Buffer
			je := json.NewEncoder(&want)
			je.SetEscapeHTML(false)
			if err := je.Encode(e); err != nil {
				t.Fatal(err)
			}
			if enc[i].ID != e.ID || !bytes.Equal(enc[i].JSON, bytes.TrimSuffix(want.Bytes(), []byte("\n"))) {
				t.Fatalf("%s: event %d encoded as %s, want %s", name, e.ID, enc[i].JSON, want.Bytes())
			}
		}
	}
}

// Snapshots that decode but describe a state the store cannot hold are
// refused, in either format, rather than restored into a store that later
// panics (a default tag naming no revision made GET /v1/services panic).
func TestRestoreRejectsInconsistentSnapshots(t *testing.T) {
	src := richStore(t)
	bin, js := snapshotOf(t, src), jsonSnapshotOf(t, src)
	replace := func(b []byte, old, new string) string {
		t.Helper()
		if !bytes.Contains(b, []byte(old)) {
			t.Fatalf("%q is not in the snapshot", old)
		}
		return string(bytes.Replace(b, []byte(old), []byte(new), 1))
	}
	tests := []struct{ name, input, wantErr string }{
		{"binary: default names no revision", replace(bin, "\x03svc\x051.0.0", "\x03svc\x059.9.9"), "default revision 9.9.9 of ns/svc is not among its revisions"},
		{"json: default names no revision", replace(js, `"default_tag":"1.0.0"`, `"default_tag":"9.9.9"`), "default revision 9.9.9 is not among its revisions"},
		{"json: null instance", replace(js, `"instances":[`, `"instances":[null,`), "a null or repeated instance"},
		{"json: null revision", replace(js, `"revisions":[`, `"revisions":[null,`), "a null or repeated revision"},
		{"json: negative count", replace(js, `"services":`, `"services":-`), "counts -"},
		{"json: data after the end", string(js) + "{}", "data after the snapshot's last event"},
	}
	for _, tc := range tests {
		rec := &recorder{}
		st := state.New(0, rec)
		before := snapshotOf(t, st)
		w := st.Watch()
		err := st.Restore(strings.NewReader(tc.input))
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Fatalf("%s: Restore = %v, want an error saying %q", tc.name, err, tc.wantErr)
		}
		unchangedByFailedRestore(t, st, rec, before, w)
	}
}

// A corrupt count in a binary snapshot ends at the first read that fails:
// it does not allocate for the items it claims.
func TestRestoreCorruptCountAllocatesLittle(t *testing.T) {
	good := snapshotOf(t, richStore(t))
	i := bytes.Index(good, []byte("\x02\x05users\x06orders"))
	if i < 0 {
		t.Fatal("endpoint list not found in the snapshot")
	}
	bad := append(bytes.Clone(good[:i]), 0x80, 0x87, 0x4e, 0x1c) // 60,000,000 as a uvarint, then the end
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	err := state.New(0, nil).Restore(bytes.NewReader(bad))
	runtime.ReadMemStats(&after)
	if err == nil {
		t.Fatal("a snapshot cut after a huge count was restored")
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
		t.Fatalf("refusing it allocated %d MiB", grew>>20)
	}
}

// What Restore accepts, the store can serve: GET /v1/services reads every
// service's default revision.
func TestRestoredStoresServeServices(t *testing.T) {
	good := snapshotOf(t, richStore(t))
	for i := range good {
		bad := bytes.Clone(good)
		bad[i] ^= 0xff
		st := state.New(0, nil)
		if err := st.Restore(bytes.NewReader(bad)); err == nil {
			st.Services("")
		}
	}
}
