package client

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/muster-registry/muster/api"
)

// errLog collects the errors a watcher reports.
type errLog struct {
	mu   sync.Mutex
	errs []error
}

func (l *errLog) add(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.errs = append(l.errs, err)
}

func (l *errLog) all() []error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.errs)
}

// watchSetup is a watcher of acme/web against a fake server. The watcher
// has a transport of its own (tr), so failures injected there do not touch
// the writes the test makes through c.
type watchSetup struct {
	f    *fakeMuster
	tr   *handlerTransport
	c    *Client
	w    *Watcher
	errs *errLog
}

func newWatchSetup(t *testing.T, opts WatcherOptions) *watchSetup {
	f := newFakeMuster(t)
	c, _ := newMemClient(t, f)
	wc, tr := newMemClient(t, f)
	errs := &errLog{}
	opts.OnError = errs.add
	return &watchSetup{f: f, tr: tr, c: c, w: NewWatcher(wc, "acme", "web", opts), errs: errs}
}

// start runs the watcher until the test ends and waits for its first list.
func (s *watchSetup) start(t *testing.T) {
	t.Helper()
	go func() { _ = s.w.Run(t.Context()) }()
	select {
	case <-s.w.Ready():
	case <-time.After(within):
		t.Fatalf("watcher not ready after %v; errors %v", within, s.errs.all())
	}
	synctest.Wait()
}

func (s *watchSetup) register(t *testing.T, id string, timeout int, tags ...string) {
	t.Helper()
	req := api.RegisterInstanceRequest{Address: "10.0.0.1", Port: 80, Tags: tags, HeartbeatTimeout: timeout}
	if _, err := s.c.PutInstance(t.Context(), "acme", "web", id, req); err != nil {
		t.Fatal(err)
	}
}

func ids(insts []api.Instance) []string {
	out := []string{}
	for _, in := range insts {
		out = append(out, in.ID)
	}
	return out
}

func TestWatcherFollowsTheInstances(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newWatchSetup(t, WatcherOptions{})
		s.register(t, "b", 30)
		s.register(t, "a", 30)
		s.start(t)
		if got := ids(s.w.Instances()); !slices.Equal(got, []string{"a", "b"}) {
			t.Fatalf("after the list: %v, want [a b]", got)
		}
		steps := []struct {
			name string
			do   func(t *testing.T)
			want []string
		}{
			{"join", func(t *testing.T) { s.register(t, "c", 30) }, []string{"a", "b", "c"}},
			{"update", func(t *testing.T) { s.register(t, "a", 30, "canary") }, []string{"a", "b", "c"}},
			{"remove", func(t *testing.T) {
				if err := s.c.DeregisterInstance(t.Context(), "acme", "web", "b"); err != nil {
					t.Fatal(err)
				}
			}, []string{"a", "c"}},
			{"timeout", func(t *testing.T) {
				s.register(t, "d", 3)
				synctest.Wait()
				time.Sleep(4 * time.Second)
				if _, err := s.c.Status(t.Context()); err != nil { // the fake expires on a request
					t.Fatal(err)
				}
			}, []string{"a", "c"}},
		}
		for _, st := range steps {
			st.do(t)
			synctest.Wait()
			if got := ids(s.w.Instances()); !slices.Equal(got, st.want) {
				t.Fatalf("after %s: %v, want %v", st.name, got, st.want)
			}
		}
		if a := s.w.Instances()[0]; !slices.Equal(a.Tags, []string{"canary"}) {
			t.Errorf("a after its update: tags %v, want [canary]", a.Tags)
		}
		if got, want := s.w.Snapshot().Index, Index(s.f.last()); got != want {
			t.Errorf("Index = %d, want the last event %d", got, want)
		}
		for _, r := range s.f.log(http.MethodGet, "/v1/events") {
			q, _ := url.ParseQuery(r.Query)
			if q.Get("namespace") != "acme" || q.Get("service") != "web" || q.Get("wait") != "60" || len(q["type"]) != 4 {
				t.Errorf("events request %v: want namespace, service, wait=60 and the 4 instance types", r)
			}
		}
		if e := s.errs.all(); len(e) != 0 {
			t.Errorf("errors: %v", e)
		}
	})
}

func TestWatcherSignalsOnlyChanges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newWatchSetup(t, WatcherOptions{})
		s.register(t, "a", 30)
		before := s.w.Snapshot()
		s.start(t)
		if !isClosed(before.Changed) {
			t.Error("a snapshot taken before the first list was not woken by it")
		}

		snap := s.w.Snapshot()
		a := snap.Instances[0]
		s.f.emit(api.EventInstanceRemove, "acme", "web", api.InstanceRemovedPayload{ID: "unknown"})
		s.f.emit(api.EventInstanceUpdate, "acme", "web", a) // the same instance again
		synctest.Wait()
		if isClosed(snap.Changed) {
			t.Error("Changed closed by events that changed nothing")
		}
		if got := s.w.Snapshot().Index; got != Index(s.f.last()) {
			t.Errorf("Index = %d, want %d even without a change", got, s.f.last())
		}

		critical := a
		critical.Status = api.StatusCritical
		s.f.emit(api.EventInstanceUpdate, "acme", "web", critical)
		synctest.Wait()
		if !isClosed(snap.Changed) {
			t.Fatal("Changed not closed when the instance stopped passing")
		}
		if got := s.w.Instances(); len(got) != 0 {
			t.Errorf("instances %v, want none: a critical instance is not passing", ids(got))
		}
		if next := s.w.Snapshot(); isClosed(next.Changed) {
			t.Error("the new snapshot's Changed is already closed")
		}
	})
}

func TestWatcherListsEveryPage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newWatchSetup(t, WatcherOptions{PageSize: 2})
		for _, id := range []string{"e", "d", "c", "b", "a"} {
			s.register(t, id, 30)
		}
		// a, on the first page, leaves before the second page is read: the
		// second page's index covers that, the first page's does not.
		var once atomic.Bool
		s.f.setIntercept(func(w http.ResponseWriter, r *http.Request) bool {
			if r.URL.Query().Get("marker") == "b" && once.CompareAndSwap(false, true) {
				if err := s.c.DeregisterInstance(r.Context(), "acme", "web", "a"); err != nil {
					t.Error(err)
				}
			}
			return false
		})
		s.start(t)
		if got := ids(s.w.Instances()); !slices.Equal(got, []string{"b", "c", "d", "e"}) {
			t.Fatalf("instances %v, want the four left", got)
		}
		lists := s.f.log(http.MethodGet, "/v1/services/acme/web/instances")
		var markers []string
		for _, r := range lists {
			q, _ := url.ParseQuery(r.Query)
			if q.Get("limit") != "2" || q.Get("status") != api.StatusPassing {
				t.Errorf("list %v: want limit=2 and status=passing", r)
			}
			markers = append(markers, q.Get("marker"))
		}
		if !slices.Equal(markers, []string{"", "b", "d"}) {
			t.Errorf("markers %q, want the pages' next markers", markers)
		}
	})
}

func TestWatcherResumesAfterFailures(t *testing.T) {
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
				s := newWatchSetup(t, WatcherOptions{})
				var failing atomic.Bool
				s.tr.refuse = func(r *http.Request) error {
					if tt.refused && failing.Load() {
						return errors.New("connection refused (test)")
					}
					return nil
				}
				s.f.setIntercept(func(w http.ResponseWriter, r *http.Request) bool {
					if tt.refused || !failing.Load() || r.URL.Path != "/v1/events" {
						return false
					}
					writeError(w, http.StatusServiceUnavailable, api.ErrUnavailable, "Restarting.")
					return true
				})
				s.start(t)
				failing.Store(true)
				s.register(t, "x", 120) // answers the poll in flight
				synctest.Wait()
				afterX := s.f.last()
				s.register(t, "y", 120) // happens while the watcher cannot poll
				time.Sleep(20 * time.Second)
				failing.Store(false)
				time.Sleep(20 * time.Second) // the next retry comes within MaxBackoff

				if got := ids(s.w.Instances()); !slices.Equal(got, []string{"x", "y"}) {
					t.Fatalf("instances %v, want [x y]", got)
				}
				if len(s.errs.all()) == 0 {
					t.Error("no error reported")
				}
				if n := len(s.f.log(http.MethodGet, "/v1/services/acme/web/instances")); n != 1 {
					t.Errorf("%d lists, want 1: failures resume the feed", n)
				}
				polls := s.f.log(http.MethodGet, "/v1/events")
				resumed := 0
				for _, r := range polls {
					q, _ := url.ParseQuery(r.Query)
					if q.Get("after") == strconv.FormatUint(afterX, 10) {
						resumed++
					}
				}
				if !tt.refused && resumed < 2 {
					t.Errorf("%d polls from after=%d, want the failed ones retried from there", resumed, afterX)
				}
				if resumed < 1 {
					t.Errorf("no poll resumed from after=%d: %v", afterX, polls)
				}
			})
		})
	}
}

func TestWatcherListsAgainAfterCompaction(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newWatchSetup(t, WatcherOptions{})
		s.register(t, "a", 30)
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
		s.register(t, "b", 30) // answers the poll in flight
		synctest.Wait()
		s.register(t, "c", 30)
		if err := s.c.DeregisterInstance(t.Context(), "acme", "web", "a"); err != nil {
			t.Fatal(err)
		}
		s.f.compact(s.f.last())
		pausing.Store(false)
		time.Sleep(20 * time.Second)

		if got := ids(s.w.Instances()); !slices.Equal(got, []string{"b", "c"}) {
			t.Fatalf("instances %v, want [b c]", got)
		}
		if n := len(s.f.log(http.MethodGet, "/v1/services/acme/web/instances")); n != 2 {
			t.Errorf("%d lists, want 2", n)
		}
		if !slices.ContainsFunc(s.errs.all(), func(err error) bool { return errors.Is(err, ErrEventsCompacted) }) {
			t.Errorf("errors %v, want events_compacted reported", s.errs.all())
		}
	})
}

func TestWatcherDoesNotLoopOnAFeedThatStaysCompacted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newWatchSetup(t, WatcherOptions{})
		s.f.compact(1 << 40)
		s.start(t)
		snap := s.w.Snapshot()
		time.Sleep(time.Minute)
		if isClosed(snap.Changed) {
			t.Error("Changed closed by lists that found what the cache held")
		}
		n := len(s.f.log("", ""))
		// Backoff 0.5 s doubling to 15 s: about eight cycles of list and
		// poll in a minute, and never fewer than three.
		if n < 6 || n > 40 {
			t.Errorf("%d requests in a minute, want 6–40", n)
		}
	})
}

func TestWatcherOfAServiceThatDoesNotExistYet(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newWatchSetup(t, WatcherOptions{})
		s.f.emit(api.EventRevisionRegister, "acme", "other", api.Revision{}) // some history
		var missing atomic.Bool
		missing.Store(true)
		s.f.setIntercept(func(w http.ResponseWriter, r *http.Request) bool {
			if !missing.Load() || r.URL.Path != "/v1/services/acme/web/instances" {
				return false
			}
			writeError(w, http.StatusNotFound, api.ErrNotFound, "No such service.")
			return true
		})
		s.start(t)
		if n := len(s.f.log(http.MethodGet, "/v1/status")); n != 1 {
			t.Errorf("%d status reads, want 1", n)
		}
		polls := s.f.log(http.MethodGet, "/v1/events")
		if q, _ := url.ParseQuery(polls[0].Query); q.Get("after") != "1" {
			t.Errorf("first poll %v, want after=1 (the status' index)", polls[0])
		}
		missing.Store(false)
		s.register(t, "a", 30)
		synctest.Wait()
		if got := ids(s.w.Instances()); !slices.Equal(got, []string{"a"}) {
			t.Errorf("instances %v, want [a]", got)
		}
	})
}

func TestWatcherSkipsForeignAndMalformedEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newWatchSetup(t, WatcherOptions{})
		var once atomic.Bool
		s.f.setIntercept(func(w http.ResponseWriter, r *http.Request) bool {
			if r.URL.Path != "/v1/events" || !once.CompareAndSwap(false, true) {
				return false
			}
			foreign, _ := json.Marshal(api.Instance{ID: "o1", Namespace: "acme", Service: "other", Status: api.StatusPassing})
			writeJSON(w, http.StatusOK, api.EventList{Events: []api.Event{
				{ID: 1, Type: api.EventInstanceJoin, Namespace: "acme", Service: "other", Payload: foreign},
				{ID: 2, Type: api.EventInstanceJoin, Namespace: "acme", Service: "web", Payload: json.RawMessage(`{}`)},
				{ID: 3, Type: api.EventRevisionRegister, Namespace: "acme", Service: "web", Payload: json.RawMessage(`{}`)},
			}, Next: 3})
			return true
		})
		s.start(t)
		if got := s.w.Instances(); len(got) != 0 {
			t.Errorf("instances %v, want none", ids(got))
		}
		if got := s.w.Snapshot().Index; got != 3 {
			t.Errorf("Index = %d, want 3: skipped events still advance it", got)
		}
		if e := s.errs.all(); len(e) != 1 {
			t.Errorf("errors %v, want one for the payload without an id", e)
		}
	})
}

func TestWatcherRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newWatchSetup(t, WatcherOptions{})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- s.w.Run(ctx) }()
		synctest.Wait()
		if err := s.w.Run(ctx); !errors.Is(err, ErrAlreadyStarted) {
			t.Errorf("second Run() = %v, want ErrAlreadyStarted", err)
		}
		cancel()
		if err := recv(t, done); !errors.Is(err, context.Canceled) {
			t.Errorf("Run() = %v, want context.Canceled", err)
		}
	})
}
