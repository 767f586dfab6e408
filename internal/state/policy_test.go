package state_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/muster-registry/muster/api"
	"github.com/muster-registry/muster/internal/registry"
	"github.com/muster-registry/muster/internal/state"
)

func defaultOf(t *testing.T, st *state.Store, k state.Key) string {
	t.Helper()
	rev, _, err := st.Revision(k, "")
	if errors.Is(err, registry.ErrNotFound) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return rev.RevisionTag
}

func typesAfter(t *testing.T, st *state.Store, after uint64) []string {
	t.Helper()
	evs, _, err := st.Events(after, state.EventFilter{}, 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		out = append(out, e.Type)
	}
	return out
}

func TestPolicyRulesDecideTheDefault(t *testing.T) {
	k := key("ns", "svc")
	st := state.New(0, nil)
	for i, tag := range []string{"1.0.0", "1.1.0", "2.0.0-rc.1"} {
		if _, _, err := st.RegisterRevision(at(i), k, tag, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	if got := defaultOf(t, st, k); got != "2.0.0-rc.1" {
		t.Fatalf("latest_semver default = %q", got)
	}

	// latest_stable re-evaluates at once: the prerelease loses the default.
	idx := st.Index()
	if err := st.SetPolicy(at(10), k, &api.Policy{DefaultRule: api.RuleLatestStable}); err != nil {
		t.Fatal(err)
	}
	if got := defaultOf(t, st, k); got != "1.1.0" {
		t.Fatalf("latest_stable default = %q, want 1.1.0", got)
	}
	// The same policy again changes nothing and says nothing.
	before := st.Index()
	if err := st.SetPolicy(at(10), k, &api.Policy{DefaultRule: api.RuleLatestStable}); err != nil || st.Index() != before {
		t.Fatalf("an unchanged policy wrote events (index %d → %d, %v)", before, st.Index(), err)
	}
	if got := typesAfter(t, st, idx); len(got) != 2 || got[0] != api.EventServiceUpdate || got[1] != api.EventRevisionDefault {
		t.Fatalf("events of the rule change = %v", got)
	}
	// A new prerelease does not take it; a new stable release does.
	st.RegisterRevision(at(11), k, "3.0.0-beta.1", nil, nil)
	if got := defaultOf(t, st, k); got != "1.1.0" {
		t.Fatalf("after a prerelease, default = %q", got)
	}
	st.RegisterRevision(at(12), k, "1.2.0", nil, nil)
	if got := defaultOf(t, st, k); got != "1.2.0" {
		t.Fatalf("after a stable release, default = %q", got)
	}

	// manual: nothing moves by itself; deleting the default leaves none.
	if err := st.SetPolicy(at(13), k, &api.Policy{DefaultRule: api.RuleManual}); err != nil {
		t.Fatal(err)
	}
	st.RegisterRevision(at(14), k, "9.0.0", nil, nil)
	if got := defaultOf(t, st, k); got != "1.2.0" {
		t.Fatalf("manual: default moved to %q", got)
	}
	if err := st.DeleteRevision(at(15), k, "1.2.0"); err != nil {
		t.Fatal(err)
	}
	if got := defaultOf(t, st, k); got != "" {
		t.Fatalf("manual: after deleting the default, default = %q, want none", got)
	}

	// Deleting the policy returns to latest_semver, which picks afresh.
	if !st.DeletePolicy(at(16), k) {
		t.Fatal("DeletePolicy found no policy")
	}
	if got := defaultOf(t, st, k); got != "9.0.0" {
		t.Fatalf("after deleting the policy, default = %q, want 9.0.0", got)
	}
	if st.DeletePolicy(at(17), k) {
		t.Fatal("DeletePolicy of the default policy reported a deletion")
	}
}

func TestPolicyIsValidatedAgainstTheRevisions(t *testing.T) {
	k := key("ns", "svc")
	st := state.New(0, nil)
	st.RegisterRevision(at(0), k, "1.0.0", nil, nil)
	idx := st.Index()
	err := st.SetPolicy(at(1), k, &api.Policy{Routes: []api.PolicyRoute{{Name: "beta", Revision: "2.0.0"}}})
	var fe *registry.FieldError
	if !errors.As(err, &fe) || fe.Field != "routes[0].revision" {
		t.Fatalf("policy naming an unknown revision: %v", err)
	}
	if p, _ := st.Policy(k); p != nil || st.Index() != idx {
		t.Fatalf("a refused policy was stored: %+v", p)
	}
}

func TestRevisionNamedByThePolicyIsNotDeleted(t *testing.T) {
	k := key("ns", "svc")
	st := state.New(0, nil)
	st.RegisterRevision(at(0), k, "1.0.0", nil, nil)
	st.RegisterRevision(at(1), k, "1.1.0", nil, nil)
	p := &api.Policy{DefaultRule: api.RuleLatestSemver, Routes: []api.PolicyRoute{{Name: "ab", Split: []api.SplitEntry{{Revision: "1.0.0", Weight: 1}, {Revision: "1.1.0", Weight: 1}}}}}
	if err := st.SetPolicy(at(2), k, p); err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteRevision(at(3), k, "1.0.0"); !errors.Is(err, registry.ErrConflict) {
		t.Fatalf("deleting a revision the policy names = %v, want a conflict", err)
	}
	if _, _, err := st.Revision(k, "1.0.0"); err != nil {
		t.Fatalf("the refused delete removed the revision: %v", err)
	}

	// The policy survives a snapshot and restore.
	var buf bytes.Buffer
	if _, err := st.Snapshot().WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	restored := state.New(0, nil)
	if err := restored.Restore(bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	got, _ := restored.Policy(k)
	a, _ := json.Marshal(got)
	b, _ := json.Marshal(p)
	if !bytes.Equal(a, b) {
		t.Fatalf("restored policy %s, want %s", a, b)
	}
	sel, _, err := restored.Selection(k)
	if err != nil || sel.Default != "1.1.0" || len(sel.Revisions) != 2 || sel.Policy == nil {
		t.Fatalf("Selection after restore = %+v, %v", sel, err)
	}
}
