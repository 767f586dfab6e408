package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/muster-registry/muster/api"
)

// resolverSetup is a resolver of acme/web against a fake server. As in
// watchSetup, the resolver has a transport of its own (tr), and the test
// writes through c.
type resolverSetup struct {
	f    *fakeMuster
	tr   *handlerTransport
	c    *Client
	r    *Resolver
	errs *errLog
}

func newResolverSetup(t *testing.T, opts ResolverOptions, reqs ...ResolveOptions) *resolverSetup {
	f := newFakeMuster(t)
	c, _ := newMemClient(t, f)
	rc, tr := newMemClient(t, f)
	errs := &errLog{}
	opts.OnError = errs.add
	return &resolverSetup{f: f, tr: tr, c: c, r: NewResolver(rc, "acme", "web", opts, reqs...), errs: errs}
}

// start runs the resolver until the test ends and waits for its first
// resolution.
func (s *resolverSetup) start(t *testing.T) {
	t.Helper()
	go func() { _ = s.r.Run(t.Context()) }()
	select {
	case <-s.r.Ready():
	case <-time.After(within):
		t.Fatalf("resolver not ready after %v; errors %v", within, s.errs.all())
	}
	synctest.Wait()
}

func (s *resolverSetup) revision(t *testing.T, tag string, isDefault ...bool) {
	t.Helper()
	req := api.RegisterRevisionRequest{RevisionTag: tag}
	if len(isDefault) > 0 {
		req.IsDefault = &isDefault[0]
	}
	if _, err := s.c.RegisterRevision(t.Context(), "acme", "web", req); err != nil {
		t.Fatal(err)
	}
}

func (s *resolverSetup) instance(t *testing.T, id, tag string) api.Registration {
	t.Helper()
	reg, err := s.c.PutInstance(t.Context(), "acme", "web", id, api.RegisterInstanceRequest{RevisionTag: tag, Address: "10.0.0.1", Port: 80, HeartbeatTimeout: 120})
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

func (s *resolverSetup) setPolicy(t *testing.T, p api.Policy) {
	t.Helper()
	if _, err := s.c.SetPolicy(t.Context(), "acme", "web", p); err != nil {
		t.Fatal(err)
	}
}

// resolves answers the number of resolve requests the fake has seen.
func (s *resolverSetup) resolves() int {
	return len(s.f.log(http.MethodGet, "/v1/resolve/acme/web"))
}

// describeResolution writes a resolution on one line for comparisons:
// "TAG route=ROUTE fallback=BOOL [INSTANCE IDS]", or "error: TYPE".
func describeResolution(res api.Resolution, err error) string {
	if err != nil {
		var ae *APIError
		if errors.As(err, &ae) {
			return "error: " + ae.Type
		}
		return "error: " + err.Error()
	}
	return fmt.Sprintf("%s route=%s fallback=%t %v", res.Revision.RevisionTag, res.Route, res.Fallback, ids(res.Instances))
}

// betaAndBilling is a policy: X-Channel: beta gets the beta, billing* the
// old 1.0.0.
func betaAndBilling(fallback bool) api.Policy {
	return api.Policy{
		Routes: []api.PolicyRoute{
			{Name: "beta", Match: &api.PolicyMatch{Headers: map[string]string{"X-Channel": "beta"}}, Revision: "3.0.0-beta.1"},
			{Name: "pin", Match: &api.PolicyMatch{Requesters: []string{"bill*"}}, Revision: "1.0.0"},
		},
		FallbackToDefault: fallback,
	}
}

func TestResolverFollowsThePolicy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newResolverSetup(t, ResolverOptions{},
			ResolveOptions{Requester: "billing"},
			ResolveOptions{Requester: "search", Headers: http.Header{"X-Channel": {"beta"}}},
			ResolveOptions{},
		)
		s.revision(t, "1.0.0")
		s.revision(t, "2.0.0")
		s.revision(t, "3.0.0-beta.1", false)
		s.instance(t, "web-2", "2.0.0")
		s.instance(t, "web-b", "3.0.0-beta.1")
		s.start(t)

		steps := []struct {
			name                  string
			do                    func(t *testing.T)
			billing, search, anon string
		}{
			{"first resolution", func(*testing.T) {},
				"2.0.0 route= fallback=false [web-2]", "2.0.0 route= fallback=false [web-2]", "2.0.0 route= fallback=false [web-2]"},
			{"policy set", func(t *testing.T) { s.setPolicy(t, betaAndBilling(false)) },
				"1.0.0 route=pin fallback=false []", "3.0.0-beta.1 route=beta fallback=false [web-b]", "2.0.0 route= fallback=false [web-2]"},
			{"fallback_to_default on", func(t *testing.T) { s.setPolicy(t, betaAndBilling(true)) },
				"2.0.0 route=pin fallback=true [web-2]", "3.0.0-beta.1 route=beta fallback=false [web-b]", "2.0.0 route= fallback=false [web-2]"},
			{"an instance of 1.0.0 joins", func(t *testing.T) { s.instance(t, "web-1", "1.0.0") },
				"1.0.0 route=pin fallback=false [web-1]", "3.0.0-beta.1 route=beta fallback=false [web-b]", "2.0.0 route= fallback=false [web-2]"},
			{"the beta's instance leaves", func(t *testing.T) {
				if err := s.c.DeregisterInstance(t.Context(), "acme", "web", "web-b"); err != nil {
					t.Fatal(err)
				}
			}, "1.0.0 route=pin fallback=false [web-1]", "2.0.0 route=beta fallback=true [web-2]", "2.0.0 route= fallback=false [web-2]"},
			{"policy deleted", func(t *testing.T) {
				if err := s.c.DeletePolicy(t.Context(), "acme", "web"); err != nil {
					t.Fatal(err)
				}
			}, "2.0.0 route= fallback=false [web-2]", "2.0.0 route= fallback=false [web-2]", "2.0.0 route= fallback=false [web-2]"},
			{"a new default", func(t *testing.T) { s.revision(t, "2.1.0", true) },
				"2.1.0 route= fallback=false []", "2.1.0 route= fallback=false []", "2.1.0 route= fallback=false []"},
		}
		for i, st := range steps {
			snap := s.r.Snapshot()
			st.do(t)
			synctest.Wait()
			if i > 0 && !isClosed(snap.Changed) {
				t.Errorf("%s: Changed not closed", st.name)
			}
			for _, c := range []struct{ requester, want string }{{"billing", st.billing}, {"search", st.search}, {"", st.anon}} {
				if got := describeResolution(s.r.ResolveFor(c.requester)); got != c.want {
					t.Errorf("%s: requester %q: %s, want %s", st.name, c.requester, got, c.want)
				}
			}
		}
		if got := describeResolution(s.r.Resolve()); got != describeResolution(s.r.ResolveFor("billing")) {
			t.Errorf("Resolve() = %s, want the first request's (billing)", got)
		}
		if got, want := s.r.Snapshot().Index, Index(s.f.last()); got != want {
			t.Errorf("Index = %d, want the last event %d", got, want)
		}
		for _, r := range s.f.log(http.MethodGet, "/v1/events") {
			q, _ := url.ParseQuery(r.Query)
			if q.Get("namespace") != "acme" || q.Get("service") != "web" || q.Get("wait") != "60" ||
				!slices.Equal(q["type"], serviceChangeTypes()) {
				t.Errorf("events request %v: want namespace, service, wait=60 and the service's types", r)
			}
		}
		if e := s.errs.all(); len(e) != 0 {
			t.Errorf("errors: %v", e)
		}
	})
}

func TestResolverSignalsOnlyChanges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newResolverSetup(t, ResolverOptions{})
		s.revision(t, "1.0.0")
		reg := s.instance(t, "web-1", "1.0.0")
		before := s.r.Snapshot()
		s.start(t)
		if !isClosed(before.Changed) {
			t.Error("a snapshot taken before the first resolution was not woken by it")
		}

		snap := s.r.Snapshot()
		n := s.resolves()
		time.Sleep(5 * time.Second)
		hb, err := s.c.Heartbeat(t.Context(), "acme", "web", "web-1", reg.Token) // no event
		if err != nil {
			t.Fatal(err)
		}
		s.f.emit(api.EventInstanceUpdate, "acme", "web", reg.Instance) // changes nothing
		synctest.Wait()
		if got := s.resolves(); got != n+1 {
			t.Errorf("%d resolutions after an event of the service, want one more than %d", got, n)
		}
		if isClosed(snap.Changed) {
			t.Error("Changed closed by a resolution that differs only in heartbeat times")
		}
		res, err := s.r.Resolve()
		if err != nil || len(res.Instances) != 1 || !res.Instances[0].ExpiresAt.Equal(hb.ExpiresAt) {
			t.Errorf("Resolve() = %+v, %v: want the fresh answer kept, expiring %s", res, err, hb.ExpiresAt)
		}
		if got := s.r.Snapshot().Index; got != Index(s.f.last()) {
			t.Errorf("Index = %d, want %d even without a change", got, s.f.last())
		}

		s.instance(t, "web-2", "1.0.0")
		synctest.Wait()
		if !isClosed(snap.Changed) {
			t.Error("Changed not closed when an instance joined")
		}
		if next := s.r.Snapshot(); isClosed(next.Changed) {
			t.Error("the new snapshot's Changed is already closed")
		}
	})
}

func TestResolverResolvesOncePerAnswer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newResolverSetup(t, ResolverOptions{}, ResolveOptions{Requester: "a"}, ResolveOptions{Requester: "b"})
		s.revision(t, "1.0.0")
		var once atomic.Bool
		s.f.setIntercept(func(w http.ResponseWriter, r *http.Request) bool {
			if r.URL.Path != "/v1/events" || !once.CompareAndSwap(false, true) {
				return false
			}
			writeJSON(w, http.StatusOK, api.EventList{Events: []api.Event{
				{ID: 10, Type: api.EventInstanceUpdate, Namespace: "acme", Service: "web", Payload: json.RawMessage(`{}`)},
				{ID: 11, Type: api.EventRevisionRegister, Namespace: "acme", Service: "web", Payload: json.RawMessage(`{}`)},
				{ID: 12, Type: api.EventServiceUpdate, Namespace: "acme", Service: "web", Payload: json.RawMessage(`{}`)},
			}, Next: 12})
			return true
		})
		s.start(t)
		if got := s.resolves(); got != 4 {
			t.Errorf("%d resolutions, want 2 at the start and 2 for the answer of three events", got)
		}
		if got := s.r.Snapshot().Index; got != 12 {
			t.Errorf("Index = %d, want 12", got)
		}
	})
}

func TestResolverAffects(t *testing.T) {
	tests := []struct {
		typ, ns, svc string
		want         bool // without FollowNamespace
		wantNS       bool // with FollowNamespace
	}{
		{api.EventRevisionRegister, "acme", "web", true, true},
		{api.EventRevisionDefault, "acme", "web", true, true},
		{api.EventRevisionRemove, "acme", "web", true, true},
		{api.EventInstanceJoin, "acme", "web", true, true},
		{api.EventInstanceUpdate, "acme", "web", true, true},
		{api.EventInstanceRemove, "acme", "web", true, true},
		{api.EventInstanceTimeout, "acme", "web", true, true},
		{api.EventServiceUpdate, "acme", "web", true, true},
		{api.EventInstanceJoin, "acme", "api", false, true},
		{api.EventRevisionDefault, "acme", "api", false, true},
		{api.EventEndpointEnabled, "acme", "api", false, true},
		{api.EventRevisionRegister, "acme", "api", false, false},
		{api.EventServiceUpdate, "acme", "api", false, false},
		{api.EventInstanceJoin, "other", "web", false, false},
		{"something.new", "acme", "web", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.typ+" "+tt.ns+"/"+tt.svc, func(t *testing.T) {
			ev := api.Event{Type: tt.typ, Namespace: tt.ns, Service: tt.svc}
			if got := NewResolver(nil, "acme", "web", ResolverOptions{}).affects(ev); got != tt.want {
				t.Errorf("affects = %t, want %t", got, tt.want)
			}
			if got := NewResolver(nil, "acme", "web", ResolverOptions{FollowNamespace: true}).affects(ev); got != tt.wantNS {
				t.Errorf("with FollowNamespace: affects = %t, want %t", got, tt.wantNS)
			}
		})
	}
}

func TestResolverKeepsItsAnswerWhileResolvingFails(t *testing.T) {
	tests := []struct {
		name    string
		refused bool // connection refused instead of 503
	}{
		{"503 unavailable", false},
		{"connection refused", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newResolverSetup(t, ResolverOptions{}, ResolveOptions{Requester: "billing"})
				s.revision(t, "1.0.0")
				s.revision(t, "2.0.0")
				var failing atomic.Bool
				s.tr.refuse = func(r *http.Request) error {
					if tt.refused && failing.Load() && strings.HasPrefix(r.URL.Path, "/v1/resolve/") {
						return errors.New("connection refused (test)")
					}
					return nil
				}
				s.f.setIntercept(func(w http.ResponseWriter, r *http.Request) bool {
					if tt.refused || !failing.Load() || !strings.HasPrefix(r.URL.Path, "/v1/resolve/") {
						return false
					}
					writeError(w, http.StatusServiceUnavailable, api.ErrUnavailable, "Restarting.")
					return true
				})
				s.start(t)
				before := s.f.last()
				failing.Store(true)
				s.setPolicy(t, api.Policy{Routes: []api.PolicyRoute{{Name: "pin", Revision: "1.0.0"}}})
				time.Sleep(20 * time.Second)
				if got := describeResolution(s.r.Resolve()); got != "2.0.0 route= fallback=false []" {
					t.Errorf("while resolving fails: %s, want the previous answer", got)
				}
				if got := s.r.Snapshot().Index; got != Index(before) {
					t.Errorf("while resolving fails: Index = %d, want %d (the event is not applied yet)", got, before)
				}
				if !slices.ContainsFunc(s.errs.all(), func(err error) bool { return err != nil }) {
					t.Error("no error reported")
				}
				failing.Store(false)
				time.Sleep(20 * time.Second) // the next retry comes within MaxBackoff

				if got := describeResolution(s.r.Resolve()); got != "1.0.0 route=pin fallback=false []" {
					t.Errorf("after the failures: %s, want the policy's pick", got)
				}
				polls := 0
				for _, r := range s.f.log(http.MethodGet, "/v1/events") {
					q, _ := url.ParseQuery(r.Query)
					if q.Get("after") == strconv.FormatUint(before, 10) {
						polls++
					}
				}
				if polls < 3 {
					t.Errorf("%d polls from after=%d, want the first and at least two retries of the same events", polls, before)
				}
				if n := len(s.f.log(http.MethodGet, "/v1/status")); n != 0 {
					t.Errorf("%d status reads, want none: failures resume the feed", n)
				}
			})
		})
	}
}

func TestResolverResolvesAgainAfterCompaction(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newResolverSetup(t, ResolverOptions{})
		s.revision(t, "1.0.0")
		var pausing atomic.Bool
		s.f.setIntercept(func(w http.ResponseWriter, r *http.Request) bool {
			if !pausing.Load() || r.URL.Path != "/v1/events" {
				return false
			}
			writeError(w, http.StatusServiceUnavailable, api.ErrUnavailable, "Paused.")
			return true
		})
		s.start(t)
		pausing.Store(true)
		s.revision(t, "2.0.0") // answers the poll in flight
		synctest.Wait()
		if got := describeResolution(s.r.Resolve()); got != "2.0.0 route= fallback=false []" {
			t.Fatalf("after 2.0.0: %s", got)
		}
		s.revision(t, "3.0.0")
		s.f.compact(s.f.last())
		pausing.Store(false)
		time.Sleep(20 * time.Second)

		if got := describeResolution(s.r.Resolve()); got != "3.0.0 route= fallback=false []" {
			t.Errorf("after compaction: %s, want 3.0.0", got)
		}
		if !slices.ContainsFunc(s.errs.all(), func(err error) bool { return errors.Is(err, ErrEventsCompacted) }) {
			t.Errorf("errors %v, want events_compacted reported", s.errs.all())
		}
		if got := s.r.Snapshot().Index; got != Index(s.f.last()) {
			t.Errorf("Index = %d, want %d", got, s.f.last())
		}
	})
}

func TestResolverOfAServiceWithoutRevisions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newResolverSetup(t, ResolverOptions{})
		s.f.emit(api.EventRevisionRegister, "acme", "other", api.Revision{}) // some history
		s.start(t)
		if _, err := s.r.Resolve(); !errors.Is(err, ErrNotFound) {
			t.Errorf("Resolve() = %v, want ErrNotFound", err)
		}
		if n := len(s.f.log(http.MethodGet, "/v1/status")); n != 1 {
			t.Errorf("%d status reads, want 1", n)
		}
		polls := s.f.log(http.MethodGet, "/v1/events")
		if q, _ := url.ParseQuery(polls[0].Query); q.Get("after") != "1" {
			t.Errorf("first poll %v, want after=1 (the status' index)", polls[0])
		}
		snap := s.r.Snapshot()
		s.revision(t, "1.0.0")
		synctest.Wait()
		if !isClosed(snap.Changed) {
			t.Error("Changed not closed when the refusal became an answer")
		}
		if got := describeResolution(s.r.Resolve()); got != "1.0.0 route= fallback=false []" {
			t.Errorf("after the first revision: %s", got)
		}
		if e := s.errs.all(); len(e) != 0 {
			t.Errorf("errors %v: a refusal is an answer, not a failure", e)
		}
	})
}

func TestResolverFollowNamespace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newResolverSetup(t, ResolverOptions{FollowNamespace: true})
		s.revision(t, "1.0.0")
		s.start(t)
		if res, err := s.r.Resolve(); err != nil || len(res.URLMap) != 0 {
			t.Fatalf("Resolve() = %+v, %v: want an empty URL map", res, err)
		}
		_, err := s.c.PutInstance(t.Context(), "acme", "users", "u-1", api.RegisterInstanceRequest{
			PublicURL: "https://users.example.com", Endpoints: []string{"users"}, HeartbeatTimeout: 120,
		})
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if res, _ := s.r.Resolve(); res.URLMap["users"] != "https://users.example.com" {
			t.Errorf("URL map %v, want users from the other service", res.URLMap)
		}
		for _, r := range s.f.log(http.MethodGet, "/v1/events") {
			q, _ := url.ParseQuery(r.Query)
			if q.Get("namespace") != "acme" || q.Has("service") {
				t.Errorf("events request %v: want the whole namespace", r)
			}
		}
	})
}

func TestResolverRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newResolverSetup(t, ResolverOptions{}, ResolveOptions{Requester: "billing"})
		s.revision(t, "1.0.0")
		if _, err := s.r.Resolve(); !errors.Is(err, ErrNotResolved) {
			t.Errorf("Resolve() before Run = %v, want ErrNotResolved", err)
		}
		if _, err := s.r.ResolveFor("billing"); !errors.Is(err, ErrNotResolved) {
			t.Errorf("ResolveFor(billing) before Run = %v, want ErrNotResolved", err)
		}
		if _, err := s.r.ResolveFor("search"); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("ResolveFor(search) = %v, want ErrInvalidArgument", err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- s.r.Run(ctx) }()
		synctest.Wait()
		if err := s.r.Run(ctx); !errors.Is(err, ErrAlreadyStarted) {
			t.Errorf("second Run() = %v, want ErrAlreadyStarted", err)
		}
		if _, err := s.r.ResolveFor("billing"); err != nil {
			t.Errorf("ResolveFor(billing) = %v", err)
		}
		cancel()
		if err := recv(t, done); !errors.Is(err, context.Canceled) {
			t.Errorf("Run() = %v, want context.Canceled", err)
		}
	})
}

// The resolver owns its requests: changing the caller's maps afterwards
// changes nothing.
func TestNewResolverCopiesTheRequests(t *testing.T) {
	labels := map[string]string{"env": "prod"}
	headers := http.Header{"X-Channel": {"beta"}}
	r := NewResolver(nil, "acme", "web", ResolverOptions{}, ResolveOptions{Labels: labels, Headers: headers})
	labels["env"] = "dev"
	headers.Set("X-Channel", "stable")
	if got := r.reqs[0]; got.Labels["env"] != "prod" || got.Headers.Get("X-Channel") != "beta" {
		t.Errorf("request %+v changed with the caller's maps", got)
	}
}
