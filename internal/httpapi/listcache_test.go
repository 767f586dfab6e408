package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"pgregory.net/rapid"

	"github.com/muster-registry/muster/api"
	"github.com/muster-registry/muster/internal/fsm"
	"github.com/muster-registry/muster/internal/lease"
	"github.com/muster-registry/muster/internal/state"
)

// fakeClock is the clock of the handler and of the lease table.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// applyProposer applies each command to the FSM at once, as a one-node log
// would once it commits.
type applyProposer struct {
	mu    sync.Mutex
	f     *fsm.FSM
	index uint64
}

func (p *applyProposer) Propose(cmd fsm.Command) (fsm.Result, error) {
	data, err := fsm.Encode(cmd)
	if err != nil {
		return fsm.Result{}, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.index++
	return p.f.Apply(&raft.Log{Index: p.index, Data: data}).(fsm.Result), nil
}

// cacheFixture is a handler with a list cache, and what it takes to build
// another handler on the same state whose cache is empty: the reference of
// what a lookup without the cache answers.
type cacheFixture struct {
	cfg Config
	h   *Handler
	clk *fakeClock
}

type fatalHelper interface {
	Helper()
	Fatalf(format string, args ...any)
}

func newCacheFixture(t interface {
	fatalHelper
	Cleanup(func())
}) *cacheFixture {
	clk := &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	leases, err := lease.New(lease.Options{Now: clk.now})
	if err != nil {
		t.Fatalf("%v", err)
	}
	leases.SetLeader(true)
	t.Cleanup(func() { leases.SetLeader(false) })
	store := state.New(0, leases)
	cfg := Config{Store: store, Leases: leases, Proposer: &applyProposer{f: fsm.New(store)}, Now: clk.now}
	return &cacheFixture{cfg: cfg, h: New(cfg), clk: clk}
}

// do sends a request to the cached handler and fails the test unless the
// answer has status want (0: any 2xx).
func (f *cacheFixture) do(t fatalHelper, method, path, body string, want int) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, httptest.NewRequest(method, path, strings.NewReader(body)))
	if ok := rec.Code == want || (want == 0 && rec.Code/100 == 2); !ok {
		t.Fatalf("%s %s = %d %s, want %d", method, path, rec.Code, rec.Body.String(), want)
	}
	return rec
}

func (f *cacheFixture) register(t fatalHelper, svc, id string, timeout int) string {
	t.Helper()
	rec := f.do(t, http.MethodPut, "/v1/services/acme/"+svc+"/instances/"+id, fmt.Sprintf(`{"heartbeat_timeout":%d}`, timeout), 0)
	var reg api.Registration
	if err := json.Unmarshal(rec.Body.Bytes(), &reg); err != nil || reg.Token == "" {
		t.Fatalf("registration %q: %v", rec.Body.String(), err)
	}
	return reg.Token
}

// lookup lists svc through the cached handler and through a handler
// without a cache, fails the test unless both answer the same status,
// index and bytes, and returns the decoded list.
func (f *cacheFixture) lookup(t fatalHelper, svc, query string) api.List[api.Instance] {
	t.Helper()
	path := "/v1/services/acme/" + svc + "/instances" + query
	got := httptest.NewRecorder()
	f.h.ServeHTTP(got, httptest.NewRequest(http.MethodGet, path, nil))
	want := httptest.NewRecorder()
	New(f.cfg).ServeHTTP(want, httptest.NewRequest(http.MethodGet, path, nil))
	if got.Code != want.Code || got.Body.String() != want.Body.String() || got.Header().Get(api.HeaderIndex) != want.Header().Get(api.HeaderIndex) {
		t.Fatalf("GET %s at %s:\n got %d index %s %s\nwant %d index %s %s", path, f.clk.now().Format(time.TimeOnly+".000"),
			got.Code, got.Header().Get(api.HeaderIndex), got.Body.String(), want.Code, want.Header().Get(api.HeaderIndex), want.Body.String())
	}
	var l api.List[api.Instance]
	if got.Code == http.StatusOK {
		if err := json.Unmarshal(got.Body.Bytes(), &l); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
	}
	return l
}

func byID(l api.List[api.Instance]) map[string]api.Instance {
	m := map[string]api.Instance{}
	for _, v := range l.Values {
		m[v.ID] = v
	}
	return m
}

// A cached lookup answer is refreshed by every change it shows, and by
// nothing else.
func TestInstanceListCacheRefresh(t *testing.T) {
	f := newCacheFixture(t)
	tok1 := f.register(t, "web", "w1", 10)
	f.register(t, "web", "w2", 10)
	t0 := f.clk.now()
	f.lookup(t, "web", "")
	if e := f.h.lists.get(listKey{svc: state.Key{Namespace: "acme", Name: "web"}, limit: api.DefaultListLimit}); e == nil || len(e.insts) != 2 {
		t.Fatalf("the unfiltered lookup was not cached: %+v", e)
	}
	f.lookup(t, "web", "")

	steps := []struct {
		name   string
		change func()
		check  func(map[string]api.Instance) bool
	}{
		{"heartbeat", func() {
			f.clk.advance(2 * time.Second)
			f.do(t, http.MethodPost, "/v1/services/acme/web/instances/w1/heartbeat", `{"token":"`+tok1+`"}`, http.StatusOK)
		}, func(m map[string]api.Instance) bool { return m["w1"].LastHeartbeatAt.Equal(t0.Add(2 * time.Second)) }},
		{"register", func() { f.register(t, "web", "w3", 10) }, func(m map[string]api.Instance) bool { return len(m) == 3 }},
		{"patch", func() {
			f.do(t, http.MethodPatch, "/v1/services/acme/web/instances/w3", `{"tags":["blue"]}`, http.StatusOK)
		}, func(m map[string]api.Instance) bool { return len(m["w3"].Tags) == 1 }},
		{"deregister", func() {
			f.do(t, http.MethodDelete, "/v1/services/acme/web/instances/w3", "", http.StatusNoContent)
		}, func(m map[string]api.Instance) bool { _, ok := m["w3"]; return !ok && len(m) == 2 }},
		{"a change of another service", func() { f.register(t, "api", "a1", 10) }, func(m map[string]api.Instance) bool { return len(m) == 2 }},
		{"a default revision", func() {
			f.do(t, http.MethodPost, "/v1/services/acme/web", `{"revision_tag":"1.0.0","is_default":true}`, http.StatusCreated)
		}, func(m map[string]api.Instance) bool { return len(m) == 2 }},
		{"a policy", func() {
			f.do(t, http.MethodPut, "/v1/services/acme/web/policy", `{"default_rule":"latest_semver","routes":[]}`, http.StatusOK)
		}, func(m map[string]api.Instance) bool { return len(m) == 2 }},
		{"just before a deadline", func() { f.clk.advance(8*time.Second - time.Millisecond) },
			func(m map[string]api.Instance) bool { return m["w2"].Status == api.StatusPassing }},
		{"the deadline", func() { f.clk.advance(time.Millisecond) },
			func(m map[string]api.Instance) bool {
				return m["w2"].Status == api.StatusCritical && m["w1"].Status == api.StatusPassing
			}},
		{"the next deadline", func() { f.clk.advance(2 * time.Second) },
			func(m map[string]api.Instance) bool { return m["w1"].Status == api.StatusCritical }},
	}
	for _, s := range steps {
		s.change()
		// Twice: the first answer may build the entry, the second uses it.
		for range 2 {
			if m := byID(f.lookup(t, "web", "")); !s.check(m) {
				t.Fatalf("after %s: %+v", s.name, m)
			}
		}
	}
}

// A batch heartbeat refreshes the answer too.
func TestInstanceListCacheRefreshByBatch(t *testing.T) {
	f := newCacheFixture(t)
	tok := f.register(t, "web", "w1", 10)
	f.lookup(t, "web", "?limit=5")
	f.clk.advance(time.Second)
	f.do(t, http.MethodPost, "/v1/heartbeats", `{"heartbeats":[{"namespace":"acme","service":"web","id":"w1","token":"`+tok+`"}]}`, http.StatusOK)
	if got := f.lookup(t, "web", "?limit=5").Values[0].LastHeartbeatAt; !got.Equal(f.clk.now()) {
		t.Fatalf("last_heartbeat_at = %s after a batch heartbeat at %s", got, f.clk.now())
	}
}

// Any sequence of changes, clock moves and lookups: the cached handler
// answers exactly what a handler without a cache answers.
func TestInstanceListCacheProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		f := newCacheFixture(t)
		ids := []string{"a", "b", "c"}
		svcs := []string{"web", "api"}
		tokens := map[string]string{}
		for range rapid.IntRange(1, 40).Draw(t, "steps") {
			svc := rapid.SampledFrom(svcs).Draw(t, "svc")
			id := rapid.SampledFrom(ids).Draw(t, "id")
			base := "/v1/services/acme/" + svc + "/instances/" + id
			switch rapid.IntRange(0, 6).Draw(t, "action") {
			case 0:
				tokens[svc+id] = f.register(t, svc, id, rapid.IntRange(3, 12).Draw(t, "timeout"))
			case 1:
				if tok, ok := tokens[svc+id]; ok {
					// A heartbeat at the same instant would change nothing.
					f.clk.advance(time.Duration(rapid.IntRange(1, 2000).Draw(t, "ms before")) * time.Millisecond)
					rec := httptest.NewRecorder()
					f.h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, base+"/heartbeat", strings.NewReader(`{"token":"`+tok+`"}`)))
					var hb api.HeartbeatResponse
					if rec.Code == http.StatusOK && json.Unmarshal(rec.Body.Bytes(), &hb) == nil {
						tokens[svc+id] = hb.Token
					}
				}
			case 2:
				f.h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodDelete, base, nil))
				delete(tokens, svc+id)
			case 3:
				tag := rapid.SampledFrom([]string{"x", "y"}).Draw(t, "tag")
				f.h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPatch, base, strings.NewReader(`{"tags":["`+tag+`"]}`)))
			case 4:
				f.clk.advance(rapid.SampledFrom([]time.Duration{0, time.Millisecond, 999 * time.Millisecond, 3 * time.Second, 7 * time.Second, 13 * time.Second}).Draw(t, "advance"))
			default:
				q := rapid.SampledFrom([]string{"", "?limit=1", "?limit=10000", "?tag=x", "?status=passing"}).Draw(t, "query")
				f.lookup(t, svc, q)
				f.lookup(t, svc, q)
			}
		}
	})
}

// The cache holds at most maxListCacheBytes of answers: storing more drops
// older entries, never the one just stored, and refuses an answer too large
// to be worth holding.
func TestListCacheBound(t *testing.T) {
	var c listCache
	entry := func(n int) *listEntry { return &listEntry{body: make([]byte, n)} }
	key := func(i int) listKey { return listKey{svc: state.Key{Namespace: "ns", Name: fmt.Sprint(i)}, limit: 1} }
	for i := range 20 {
		c.put(key(i), entry(maxListCacheBytes/8))
		if c.bytes > maxListCacheBytes {
			t.Fatalf("after %d entries: %d bytes held, bound %d", i+1, c.bytes, maxListCacheBytes)
		}
		if c.get(key(i)) == nil {
			t.Fatalf("entry %d, just stored, is missing", i)
		}
	}
	sum := 0
	for _, e := range c.entries {
		sum += cap(e.body)
	}
	if sum != c.bytes || len(c.entries) != 8 {
		t.Fatalf("%d entries of %d bytes, accounted %d", len(c.entries), sum, c.bytes)
	}
	c.put(key(99), entry(maxListCacheBytes/4+1))
	if c.get(key(99)) != nil {
		t.Fatal("an answer over a quarter of the bound was cached")
	}
	// Replacing an entry accounts for the one it replaces.
	before := c.bytes
	c.put(key(19), entry(maxListCacheBytes/8))
	if c.bytes != before {
		t.Fatalf("bytes %d after replacing an entry of the same size, was %d", c.bytes, before)
	}
}

// Lookups concurrent with heartbeats and registrations (run with -race):
// once the writers stop, the cached answer is the fresh one.
func TestInstanceListCacheConcurrent(t *testing.T) {
	f := newCacheFixture(t)
	tokens := []string{f.register(t, "web", "w1", 60), f.register(t, "web", "w2", 60)}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				rec := httptest.NewRecorder()
				f.h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/services/acme/web/instances", nil))
				if rec.Code != http.StatusOK {
					t.Errorf("lookup: %d %s", rec.Code, rec.Body.String())
					return
				}
			}
		})
	}
	for i := range 200 {
		f.clk.advance(time.Millisecond)
		j := i % 2
		rec := f.do(t, http.MethodPost, fmt.Sprintf("/v1/services/acme/web/instances/w%d/heartbeat", j+1), `{"token":"`+tokens[j]+`"}`, http.StatusOK)
		var hb api.HeartbeatResponse
		if err := json.Unmarshal(rec.Body.Bytes(), &hb); err != nil {
			t.Fatal(err)
		}
		tokens[j] = hb.Token
		if i%50 == 0 {
			f.register(t, "web", fmt.Sprintf("x%d", i), 60)
		}
	}
	close(stop)
	wg.Wait()
	if m := byID(f.lookup(t, "web", "")); !m["w2"].LastHeartbeatAt.Equal(f.clk.now()) || len(m) != 6 {
		t.Fatalf("after the writers stopped: %+v", m)
	}
}
