package state_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/muster-registry/muster/api"
	"github.com/muster-registry/muster/internal/state"
)

// endpointEvents returns "type:endpoint[missing…]" for the endpoint events after `after`.
func endpointEvents(t *testing.T, st *state.Store, after uint64) []string {
	t.Helper()
	evs, _, err := st.Events(after, state.EventFilter{Types: []string{api.EventEndpointEnabled, api.EventEndpointDisabled}}, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		var p api.EndpointStatePayload
		if err := json.Unmarshal(e.Payload, &p); err != nil {
			t.Fatal(err)
		}
		out = append(out, strings.TrimPrefix(e.Type, "endpoint.")+":"+p.Endpoint+"["+strings.Join(p.Missing, ",")+"]")
	}
	return out
}

func instOf(svc, id, tag string, regIndex uint64) *state.Instance {
	i := inst("acme", svc, id, regIndex)
	i.RevisionTag = tag
	return i
}

func TestReadinessFollowsInstances(t *testing.T) {
	st := state.New(0, nil)
	orders := key("acme", "orders")
	def := &api.Definition{Endpoints: []api.Endpoint{
		{Name: "update", Backends: []string{"acme/db", "acme/queue@^2"}},
		{Name: "index"},
	}}
	if _, err := st.SetDefinition(at(0), orders, def); err != nil {
		t.Fatal(err)
	}
	if got := endpointEvents(t, st, 0); strings.Join(got, " ") != "disabled:update[acme/db,acme/queue@^2] enabled:index[]" {
		t.Fatalf("initial states: %v", got)
	}
	idx := st.Index()
	st.RegisterInstance(at(1), instOf("db", "db1", "", 2), false)
	st.RegisterInstance(at(2), instOf("queue", "q1", "1.9.0", 3), false) // not ^2
	if got := endpointEvents(t, st, idx); len(got) != 0 {
		t.Fatalf("no flip expected yet: %v", got)
	}
	rd, _, _ := st.Readiness(orders)
	if rd.Ready || rd.Endpoints[0].Enabled || strings.Join(rd.Endpoints[0].Missing, ",") != "acme/queue@^2" {
		t.Fatalf("readiness %+v", rd)
	}
	st.RegisterInstance(at(3), instOf("queue", "q2", "2.1.0", 4), false)
	if got := endpointEvents(t, st, idx); strings.Join(got, " ") != "enabled:update[]" {
		t.Fatalf("after a ^2 queue joined: %v", got)
	}
	// A second acceptable instance changes nothing; losing one of two neither.
	idx = st.Index()
	st.RegisterInstance(at(4), instOf("queue", "q3", "2.2.0", 5), false)
	st.DeregisterInstance(at(5), state.InstanceKey{Namespace: "acme", Service: "queue", ID: "q3"})
	if got := endpointEvents(t, st, idx); len(got) != 0 {
		t.Fatalf("no flip expected: %v", got)
	}
	// Expiring the db and the last ^2 queue in one batch flips once, naming both.
	idx = st.Index()
	st.ExpireInstances(at(6), []state.Expiry{
		{Key: state.InstanceKey{Namespace: "acme", Service: "db", ID: "db1"}, RegIndex: 2, Deadline: at(6)},
		{Key: state.InstanceKey{Namespace: "acme", Service: "queue", ID: "q2"}, RegIndex: 4, Deadline: at(6)},
	})
	if got := endpointEvents(t, st, idx); strings.Join(got, " ") != "disabled:update[acme/db,acme/queue@^2]" {
		t.Fatalf("after the expiry batch: %v", got)
	}
	// A definition change that drops the missing backends enables the endpoint.
	idx = st.Index()
	def2 := &api.Definition{Endpoints: []api.Endpoint{{Name: "update", Backends: []string{"acme/queue"}}, {Name: "index"}}}
	diff, err := st.SetDefinition(at(7), orders, def2)
	if err != nil || strings.Join(diff.Changed, ",") != "update" {
		t.Fatalf("diff %+v, %v", diff, err)
	}
	if got := endpointEvents(t, st, idx); strings.Join(got, " ") != "enabled:update[]" {
		t.Fatalf("after the definition change: %v", got)
	}
	// The same definition again writes nothing.
	idx = st.Index()
	if _, err := st.SetDefinition(at(8), orders, def2); err != nil || st.Index() != idx {
		t.Fatalf("an unchanged definition wrote events (%v)", err)
	}

	// A restore rebuilds the derived readiness exactly.
	var buf bytes.Buffer
	if _, err := st.Snapshot().WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	restored := state.New(0, nil)
	if err := restored.Restore(&buf); err != nil {
		t.Fatal(err)
	}
	a, _, _ := st.Readiness(orders)
	b, _, _ := restored.Readiness(orders)
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if !bytes.Equal(ja, jb) {
		t.Fatalf("restored readiness %s, want %s", jb, ja)
	}
	// And keeps following: losing the last queue disables it there too.
	idx = restored.Index()
	restored.DeregisterInstance(at(9), state.InstanceKey{Namespace: "acme", Service: "queue", ID: "q1"})
	if got := endpointEvents(t, restored, idx); strings.Join(got, " ") != "disabled:update[acme/queue]" {
		t.Fatalf("after restore, losing the queue: %v", got)
	}
}

// A POST that takes over a dead registration of a backend's only instance
// ends it and starts the new one in one write: the endpoint does not flap.
func TestTakeOverDoesNotFlapReadiness(t *testing.T) {
	st := state.New(0, nil)
	orders := key("acme", "orders")
	if _, err := st.SetDefinition(at(0), orders, &api.Definition{Endpoints: []api.Endpoint{{Name: "update", Backends: []string{"acme/queue"}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.RegisterInstance(at(1), instOf("queue", "q1", "", 2), false); err != nil {
		t.Fatal(err)
	}
	idx := st.Index()
	dead := state.Expiry{Key: state.InstanceKey{Namespace: "acme", Service: "queue", ID: "q1"}, RegIndex: 2, Deadline: at(5)}
	if err := st.TakeOver(at(6), instOf("queue", "q1", "", 7), dead); err != nil {
		t.Fatal(err)
	}
	if got := endpointEvents(t, st, idx); len(got) != 0 {
		t.Fatalf("the take-over flapped the endpoint: %v", got)
	}
	evs, _, _ := st.Events(idx, state.EventFilter{}, 10)
	if len(evs) != 2 || evs[0].Type != api.EventInstanceTimeout || !evs[0].Time.Equal(at(5)) || evs[1].Type != api.EventInstanceJoin {
		t.Fatalf("events of the take-over: %+v", evs)
	}
	// A live registration other than the dead one is not taken over.
	if err := st.TakeOver(at(7), instOf("queue", "q1", "", 8), dead); err == nil {
		t.Fatal("took over a live registration")
	}
}
