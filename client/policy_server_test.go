package client

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/muster-registry/muster/api"
	"github.com/muster-registry/muster/internal/servertest"
)

// These tests run the SDK against a real in-process server.

func startServer(t *testing.T) *Client {
	t.Helper()
	srv := servertest.Start(t, servertest.Options{})
	c, err := New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// registerRevisions registers tags of acme/web in order; a tag ending in
// "!" is registered with is_default false.
func registerRevisions(t *testing.T, c *Client, tags ...string) {
	t.Helper()
	for _, tag := range tags {
		req := api.RegisterRevisionRequest{RevisionTag: strings.TrimSuffix(tag, "!")}
		if strings.HasSuffix(tag, "!") {
			no := false
			req.IsDefault = &no
		}
		if _, err := c.RegisterRevision(t.Context(), "acme", "web", req); err != nil {
			t.Fatal(err)
		}
	}
}

func registerInstance(t *testing.T, c *Client, id, tag string) {
	t.Helper()
	req := api.RegisterInstanceRequest{RevisionTag: tag, Address: "10.0.0.1", Port: 80, HeartbeatTimeout: api.MaxHeartbeatTimeout}
	if _, err := c.PutInstance(t.Context(), "acme", "web", id, req); err != nil {
		t.Fatal(err)
	}
}

func TestPolicyRoutesAgainstTheServer(t *testing.T) {
	t.Parallel()
	c := startServer(t)
	ctx := t.Context()

	// The server spells out "routes": [], but the field's omitempty drops it.
	p, _, err := c.GetPolicy(ctx, "acme", "web")
	if err != nil || p.DefaultRule != api.RuleLatestSemver || len(p.Routes) != 0 || p.FallbackToDefault {
		t.Fatalf("GetPolicy of a new service = %+v, %v; want the default policy", p, err)
	}
	registerRevisions(t, c, "1.0.0", "2.0.0", "2.1.0-beta.1!")
	registerInstance(t, c, "web-2", "2.0.0")
	registerInstance(t, c, "web-b", "2.1.0-beta.1")

	_, err = c.SetPolicy(ctx, "acme", "web", api.Policy{Routes: []api.PolicyRoute{{Name: "x", Revision: "9.9.9"}}})
	var ae *APIError
	if !errors.Is(err, ErrValidation) || !errors.As(err, &ae) || !strings.Contains(ae.Details+ae.Message, "routes[0].revision") {
		t.Errorf("SetPolicy naming an unknown revision = %v, want ErrValidation naming routes[0].revision", err)
	}

	policy := api.Policy{
		Routes: []api.PolicyRoute{
			{Name: "beta", Match: &api.PolicyMatch{Headers: map[string]string{"X-Channel": "beta"}}, Constraint: ">=2.1.0-0"},
			{Name: "staging", Match: &api.PolicyMatch{Labels: map[string]string{"env": "staging"}}, Revision: "2.1.0-beta.1"},
			{Name: "pin", Match: &api.PolicyMatch{Requesters: []string{"bill*"}}, Revision: "1.0.0"},
		},
		FallbackToDefault: true,
	}
	stored, err := c.SetPolicy(ctx, "acme", "web", policy)
	want := policy
	want.DefaultRule = api.RuleLatestSemver
	if err != nil || !reflect.DeepEqual(stored, want) {
		t.Fatalf("SetPolicy = %+v, %v; want %+v", stored, err, want)
	}
	if got, idx, err := c.GetPolicy(ctx, "acme", "web"); err != nil || !reflect.DeepEqual(got, want) || idx == 0 {
		t.Errorf("GetPolicy = %+v, index %d, %v; want %+v and an index", got, idx, err, want)
	}

	tests := []struct {
		name         string
		opts         GetRevisionOptions
		tag, route   string
		fallback     bool
		resInstances int
	}{
		{"anonymous", GetRevisionOptions{}, "2.0.0", "", false, 1},
		{"header route", GetRevisionOptions{Headers: http.Header{"X-Channel": {"beta"}}}, "2.1.0-beta.1", "beta", false, 1},
		{"label route", GetRevisionOptions{Labels: map[string]string{"env": "staging"}}, "2.1.0-beta.1", "staging", false, 1},
		{"requester falls back", GetRevisionOptions{Requester: "billing"}, "2.0.0", "pin", true, 1},
		{"tag bypasses the policy", GetRevisionOptions{Requester: "billing", RevisionTag: "1.0.0"}, "1.0.0", "", false, 0},
		{"constraint bypasses the policy", GetRevisionOptions{Requester: "billing", Revision: "~2.0"}, "2.0.0", "", false, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sel, _, err := c.SelectRevision(ctx, "acme", "web", tt.opts)
			if err != nil || sel.Revision.RevisionTag != tt.tag || sel.Route != tt.route || sel.Fallback != tt.fallback {
				t.Errorf("SelectRevision = %+v, %v; want %s route %q fallback %t", sel, err, tt.tag, tt.route, tt.fallback)
			}
			res, _, err := c.Resolve(ctx, "acme", "web", ResolveOptions(tt.opts))
			if err != nil || res.Revision.RevisionTag != tt.tag || res.Route != tt.route || res.Fallback != tt.fallback || len(res.Instances) != tt.resInstances {
				t.Errorf("Resolve = %s, %v; want %s route %q fallback %t with %d instances",
					describeResolution(res, nil), err, tt.tag, tt.route, tt.fallback, tt.resInstances)
			}
		})
	}
	if _, _, err := c.GetRevision(ctx, "acme", "web", GetRevisionOptions{Revision: "^3"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetRevision of an unsatisfied constraint = %v, want ErrNotFound", err)
	}
	if _, _, err := c.Resolve(ctx, "acme", "nothing", ResolveOptions{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("Resolve of a service without revisions = %v, want ErrNotFound", err)
	}

	for range 2 { // deleting twice is fine
		if err := c.DeletePolicy(ctx, "acme", "web"); err != nil {
			t.Fatalf("DeletePolicy: %v", err)
		}
	}
	if sel, _, err := c.SelectRevision(ctx, "acme", "web", GetRevisionOptions{Requester: "billing"}); err != nil || sel.Revision.RevisionTag != "2.0.0" || sel.Route != "" {
		t.Errorf("after DeletePolicy: %+v, %v; want the default without a route", sel, err)
	}
}

// awaitResolutions waits until want holds for the resolver's snapshot,
// following Changed, for at most 10 seconds.
func awaitResolutions(t *testing.T, r *Resolver, what string, want func(ResolverSnapshot) bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		snap := r.Snapshot()
		if want(snap) {
			return
		}
		select {
		case <-snap.Changed:
		case <-deadline:
			var got []string
			for _, x := range snap.Results {
				got = append(got, x.Request.Requester+": "+describeResolution(x.Resolution, x.Err))
			}
			t.Fatalf("timed out waiting for %s; resolutions %q", what, got)
		}
	}
}

func TestResolverAgainstTheServer(t *testing.T) {
	t.Parallel()
	c := startServer(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	registerRevisions(t, c, "1.0.0", "2.0.0", "3.0.0-beta.1!")
	registerInstance(t, c, "web-1", "1.0.0")
	registerInstance(t, c, "web-2", "2.0.0")
	registerInstance(t, c, "web-b", "3.0.0-beta.1")

	reqs := []ResolveOptions{
		{Requester: "billing"},
		{Requester: "search", Headers: http.Header{"X-Channel": {"beta"}}},
	}
	for _, team := range []string{"team-a", "team-b", "team-c", "team-d", "team-e", "team-f"} {
		reqs = append(reqs, ResolveOptions{Requester: team})
	}
	errs := &errLog{}
	r := NewResolver(c, "acme", "web", ResolverOptions{OnError: errs.add}, reqs...)
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	select {
	case <-r.Ready():
	case <-time.After(10 * time.Second):
		t.Fatalf("resolver not ready; errors %v", errs.all())
	}
	if got := describeResolution(r.ResolveFor("billing")); got != "2.0.0 route= fallback=false [web-2]" {
		t.Errorf("before any policy: %s, want the default", got)
	}

	// tagOf answers the cached revision of requester, or "".
	tagOf := func(s ResolverSnapshot, requester string) string {
		for _, x := range s.Results {
			if x.Request.Requester == requester && x.Err == nil {
				return x.Resolution.Revision.RevisionTag + " " + x.Resolution.Route
			}
		}
		return ""
	}
	split := api.PolicyRoute{
		Name: "ab", Match: &api.PolicyMatch{Requesters: []string{"team-*"}}, Sticky: api.StickyRequester,
		Split: []api.SplitEntry{{Revision: "1.0.0", Weight: 50}, {Revision: "2.0.0", Weight: 50}},
	}
	beta := api.PolicyRoute{Name: "beta", Match: &api.PolicyMatch{Headers: map[string]string{"X-Channel": "beta"}}, Revision: "3.0.0-beta.1"}
	if _, err := c.SetPolicy(ctx, "acme", "web", api.Policy{Routes: []api.PolicyRoute{beta, split}}); err != nil {
		t.Fatal(err)
	}
	awaitResolutions(t, r, "the beta route", func(s ResolverSnapshot) bool {
		return tagOf(s, "search") == "3.0.0-beta.1 beta" && strings.HasSuffix(tagOf(s, "team-a"), " ab")
	})
	// A sticky split is deterministic: the cached answers are exactly what
	// the server answers now, and the six teams are not all on one side.
	sides := map[string]bool{}
	for _, x := range r.Snapshot().Results {
		fresh, _, err := c.Resolve(ctx, "acme", "web", x.Request)
		if err != nil || x.Err != nil || !sameResolved(x, Resolved{Request: x.Request, Resolution: fresh}) {
			t.Errorf("%s: cached %s, the server answers %s (%v)", x.Request.Requester,
				describeResolution(x.Resolution, x.Err), describeResolution(fresh, err), err)
		}
		if strings.HasPrefix(x.Request.Requester, "team-") {
			sides[x.Resolution.Revision.RevisionTag] = true
			if x.Resolution.Route != "ab" {
				t.Errorf("%s: route %q, want ab", x.Request.Requester, x.Resolution.Route)
			}
		}
	}
	if len(sides) != 2 {
		t.Errorf("the teams are on %v, want both sides of the split", sides)
	}

	beta.Revision = "2.0.0" // the beta channel is closed
	if _, err := c.SetPolicy(ctx, "acme", "web", api.Policy{Routes: []api.PolicyRoute{beta, split}}); err != nil {
		t.Fatal(err)
	}
	awaitResolutions(t, r, "the changed beta route", func(s ResolverSnapshot) bool {
		return tagOf(s, "search") == "2.0.0 beta"
	})

	if err := c.DeletePolicy(ctx, "acme", "web"); err != nil {
		t.Fatal(err)
	}
	awaitResolutions(t, r, "the default for everyone", func(s ResolverSnapshot) bool {
		for _, x := range s.Results {
			if describeResolution(x.Resolution, x.Err) != "2.0.0 route= fallback=false [web-2]" {
				return false
			}
		}
		return true
	})
	if e := errs.all(); len(e) != 0 {
		t.Errorf("errors: %v", e)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run() = %v, want context.Canceled", err)
	}
}
