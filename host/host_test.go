package host

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/muster-registry/muster/api"
)

// do sends one request to h and answers the recorder.
func do(h http.Handler, method, target, accept string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, nil)
	if accept != "" {
		r.Header.Set("Accept", accept)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func text(s string) RenderFunc {
	return func(r *http.Request, data any) (string, error) { return fmt.Sprintf(s, data), nil }
}

func startHost(t *testing.T, opts Options, services []Service) *Host {
	t.Helper()
	h := New(opts)
	if err := h.Start(t.Context(), services); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := h.Stop(context.Background()); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return h
}

func TestRouting(t *testing.T) {
	order := func(r *http.Request) (any, error) {
		return map[string]string{"id": r.PathValue("id"), "method": r.Method}, nil
	}
	fixed := func(v string) HandlerFunc { return func(*http.Request) (any, error) { return v, nil } }
	services := []Service{
		{Name: "order", Handler: order, Setup: []Exposure{
			Web("GET", "/orders/{id}", func(r *http.Request, data any) (string, error) {
				m := data.(map[string]string)
				return "<html><body>order " + m["id"] + "</body></html>", nil
			})}},
		{Name: "order-any", Handler: order, Setup: []Exposure{Web("ANY", "/orders/{id}", text("any %v"))}},
		{Name: "new-order", Handler: fixed("new"), Setup: []Exposure{Web("GET", "/orders/new", text("page %v"))}},
		{Name: "teapot", Handler: func(*http.Request) (any, error) { return nil, Errorf(418, "short and stout") },
			Setup: []Exposure{Web("GET", "/teapot", text("%v"))}},
		{Name: "json-only", Handler: fixed("raw"), Setup: []Exposure{Web("POST", "/raw", nil)}},
	}
	h := startHost(t, Options{}, services)

	tests := []struct {
		name, method, target, accept string
		status                       int
		body, contentType            string
	}{
		{"rendered html", "GET", "/orders/7", "text/html", 200, "<html><body>order 7</body></html>", "text/html; charset=utf-8"},
		{"browser accept renders", "GET", "/orders/7", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", 200, "<html><body>order 7</body></html>", "text/html; charset=utf-8"},
		{"json when asked", "GET", "/orders/7", "application/json", 200, `{"id":"7","method":"GET"}` + "\n", "application/json"},
		{"json preferred by q", "GET", "/orders/7", "text/html;q=0.5, application/json", 200, `{"id":"7","method":"GET"}` + "\n", "application/json"},
		{"literal beats wildcard", "GET", "/orders/new", "", 200, "page new", "text/plain; charset=utf-8"},
		{"ANY takes other methods", "DELETE", "/orders/7", "", 200, "any map[id:7 method:DELETE]", "text/plain; charset=utf-8"},
		{"escaped slash stays in segment", "GET", "/orders/a%2Fb", "application/json", 200, `{"id":"a/b","method":"GET"}` + "\n", "application/json"},
		{"handler status", "GET", "/teapot", "", 418, "418 short and stout\n", "text/plain; charset=utf-8"},
		{"no render answers json", "POST", "/raw", "", 200, `"raw"` + "\n", "application/json"},
		{"wrong method", "GET", "/raw", "", 405, "405 method not allowed\n", "text/plain; charset=utf-8"},
		{"no route, no fallback: 404", "GET", "/nowhere", "", 404, "404 not found\n", "text/plain; charset=utf-8"},
		{"404 in json", "GET", "/nowhere", "application/json", 404, `{"error":"not found"}` + "\n", "application/json"},
		{"wildcard needs a segment", "GET", "/orders/", "", 404, "404 not found\n", "text/plain; charset=utf-8"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := do(h, tc.method, tc.target, tc.accept)
			if w.Code != tc.status || w.Body.String() != tc.body || w.Header().Get("Content-Type") != tc.contentType {
				t.Errorf("got %d %q (%s), want %d %q (%s)", w.Code, w.Body.String(), w.Header().Get("Content-Type"), tc.status, tc.body, tc.contentType)
			}
		})
	}

	// Adding a fallback turns the 404s into its page, but not the 405
	// of a route's path: the fallback takes what no route matches.
	services = append(services, Service{Name: "index", Handler: fixed("home"), Setup: []Exposure{WebFallback(text("fallback %v"))}})
	if err := h.Apply(t.Context(), services); err != nil {
		t.Fatal(err)
	}
	if w := do(h, "GET", "/nowhere", ""); w.Code != 200 || w.Body.String() != "fallback home" {
		t.Errorf("fallback: got %d %q", w.Code, w.Body.String())
	}
	if w := do(h, "GET", "/raw", ""); w.Code != 200 || w.Body.String() != "fallback home" {
		t.Errorf("fallback for another method: got %d %q", w.Code, w.Body.String())
	}
}

func TestStateAndBackends(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var opens atomic.Int32
		db := Local(func(ctx context.Context) error {
			if opens.Add(1) < 3 {
				return fmt.Errorf("refused")
			}
			return nil
		}, nil)
		h := startHost(t, Options{Backends: map[string]Backend{"db": db}}, []Service{
			{Name: "page", Handler: func(*http.Request) (any, error) { return "ok", nil },
				Backends: []string{"db"}, Setup: []Exposure{Web("GET", "/page", text("%v"))}},
		})
		synctest.Wait()
		w := do(h, "GET", "/page", "")
		if w.Code != 503 || w.Header().Get("Retry-After") != "5" {
			t.Fatalf("before the db opens: got %d, Retry-After %q; want 503, 5", w.Code, w.Header().Get("Retry-After"))
		}
		st := h.State()
		if st.Ready || len(st.Endpoints) != 1 || st.Endpoints[0].Enabled || st.Endpoints[0].Missing[0] != "db" {
			t.Fatalf("state: %+v", st)
		}
		time.Sleep(300 * time.Millisecond) // two retries: 100ms, 200ms
		synctest.Wait()
		if w := do(h, "GET", "/page", ""); w.Code != 200 {
			t.Fatalf("after the db opened: got %d", w.Code)
		}
		db.SetReady(false)
		synctest.Wait()
		if w := do(h, "GET", "/page", ""); w.Code != 503 {
			t.Fatalf("after the db was lost: got %d", w.Code)
		}
		db.SetReady(true)
		synctest.Wait()
		var got State
		if err := json.Unmarshal(do(h, "GET", StatePath, "").Body.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		if !got.Ready || !got.Endpoints[0].Enabled || len(got.Backends) != 1 || !got.Backends[0].Ready {
			t.Fatalf("state page: %+v", got)
		}
	})
}

func TestApplyDrainsRemovedRoute(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		slow := Service{Name: "slow", Handler: func(*http.Request) (any, error) {
			<-release
			return "done", nil
		}, Setup: []Exposure{Web("GET", "/slow", text("%v"))}}
		other := Service{Name: "other", Handler: func(*http.Request) (any, error) { return "other", nil },
			Setup: []Exposure{Web("GET", "/other", text("%v"))}}
		h := startHost(t, Options{}, []Service{slow, other})

		inflight := make(chan *httptest.ResponseRecorder)
		go func() { inflight <- do(h, "GET", "/slow", "") }()
		synctest.Wait() // the request is in the handler

		applied := make(chan error)
		go func() { applied <- h.Apply(context.Background(), []Service{other}) }()
		synctest.Wait()
		select {
		case err := <-applied:
			t.Fatalf("Apply returned before the in-flight request finished: %v", err)
		default:
		}
		// The route takes no new request while it drains; the rest is untouched.
		if w := do(h, "GET", "/slow", ""); w.Code != 404 {
			t.Errorf("new request to a draining route: got %d, want 404", w.Code)
		}
		if w := do(h, "GET", "/other", ""); w.Code != 200 {
			t.Errorf("untouched route: got %d", w.Code)
		}
		close(release)
		if w := <-inflight; w.Code != 200 || w.Body.String() != "done" {
			t.Errorf("in-flight request: got %d %q", w.Code, w.Body.String())
		}
		if err := <-applied; err != nil {
			t.Fatal(err)
		}
		if w := do(h, "GET", "/slow", ""); w.Code != 404 {
			t.Errorf("after the drain: got %d, want 404", w.Code)
		}
	})
}

func TestApplyDrainBoundedByContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		defer close(release)
		h := startHost(t, Options{}, []Service{{Name: "stuck", Handler: func(*http.Request) (any, error) {
			<-release
			return nil, nil
		}, Setup: []Exposure{Web("GET", "/stuck", nil)}}})
		go do(h, "GET", "/stuck", "")
		synctest.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.Apply(ctx, nil); err == nil || !strings.Contains(err.Error(), "deadline") {
			t.Fatalf("Apply with a stuck request: %v, want the deadline", err)
		}
	})
}

func TestCronScheduleChange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		runs := map[string][]time.Time{}
		record := func(r *http.Request) (any, error) {
			c := CallOf(r)
			mu.Lock()
			defer mu.Unlock()
			runs[c.Endpoint] = append(runs[c.Endpoint], c.Time)
			return nil, nil
		}
		count := func(name string) int {
			mu.Lock()
			defer mu.Unlock()
			return len(runs[name])
		}
		var reqs atomic.Int32
		page := Service{Name: "page", Handler: func(*http.Request) (any, error) { reqs.Add(1); return "p", nil },
			Setup: []Exposure{Web("GET", "/p", nil)}}
		sweep := Service{Name: "sweep", Handler: record, Setup: []Exposure{Cron("@every 1m")}}
		tick := Service{Name: "tick", Handler: record, Setup: []Exposure{Cron("@every 10s")}}
		h := startHost(t, Options{}, []Service{page, sweep, tick})

		time.Sleep(5*time.Minute + time.Second)
		synctest.Wait()
		if n := count("sweep"); n != 5 {
			t.Fatalf("sweep ran %d times in 5m at @every 1m, want 5", n)
		}
		if n := count("tick"); n != 30 {
			t.Fatalf("tick ran %d times in 5m at @every 10s, want 30", n)
		}
		x := h.endpoints["tick"].exposures[0]
		routeBefore := h.table.Load().routes[0]

		sweep.Setup = []Exposure{Cron("@every 20s")}
		if err := h.Apply(context.Background(), []Service{page, sweep, tick}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		if n := count("sweep"); n != 5+3 {
			t.Errorf("sweep after the change to @every 20s: %d runs, want 8", n)
		}
		if n := count("tick"); n != 36 {
			t.Errorf("tick kept its pace across the change: %d runs, want 36", n)
		}
		if h.endpoints["tick"].exposures[0] != x || h.table.Load().routes[0] != routeBefore {
			t.Error("an untouched exposure was restarted")
		}
		if w := do(h, "GET", "/p", ""); w.Code != 200 {
			t.Errorf("route after the change: %d", w.Code)
		}
	})
}

func TestCronRunsOnlyWhileEnabled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		db := Local(func(context.Context) error { return nil }, nil)
		var n atomic.Int32
		startHost(t, Options{Backends: map[string]Backend{"db": db}}, []Service{{Name: "job", Backends: []string{"db"},
			Handler: func(*http.Request) (any, error) { n.Add(1); return nil, nil }, Setup: []Exposure{Cron("@every 1s")}}})
		time.Sleep(10*time.Second + time.Millisecond)
		synctest.Wait()
		db.SetReady(false)
		synctest.Wait()
		before := n.Load()
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if before != 10 || n.Load() != before {
			t.Fatalf("runs: %d while enabled (want 10), %d after disabling (want none)", before, n.Load()-before)
		}
	})
}

func TestTopicConsumer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewMemBroker()
		defer b.Close()
		db := Local(func(context.Context) error { return nil }, nil)
		got := make(chan string, 10)
		release := make(chan struct{})
		h := startHost(t, Options{Broker: b, Backends: map[string]Backend{"db": db}}, []Service{{
			Name: "consume", Backends: []string{"db"}, Setup: []Exposure{Topic("orders.*")},
			Handler: func(r *http.Request) (any, error) {
				m := CallOf(r).Message
				got <- m.Topic + ":" + string(m.Data)
				if string(m.Data) == "slow" {
					<-release
				}
				return nil, nil
			}}})
		synctest.Wait()
		pub := func(topic, data string) {
			if err := b.Publish(context.Background(), topic, []byte(data)); err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
		}
		pub("orders.created", "1")
		if m := <-got; m != "orders.created:1" {
			t.Fatalf("got %q", m)
		}
		db.SetReady(false)
		synctest.Wait()
		pub("orders.created", "while disabled")
		db.SetReady(true)
		synctest.Wait()
		pub("orders.created", "2")
		if m := <-got; m != "orders.created:2" {
			t.Fatalf("got %q, want the message after re-enabling only", m)
		}

		// Removing the consumer lets its current message finish.
		pub("orders.created", "slow")
		<-got
		applied := make(chan error)
		go func() { applied <- h.Apply(context.Background(), nil) }()
		synctest.Wait()
		select {
		case <-applied:
			t.Fatal("Apply did not wait for the consumer's message")
		default:
		}
		close(release)
		if err := <-applied; err != nil {
			t.Fatal(err)
		}
		pub("orders.created", "after")
		select {
		case m := <-got:
			t.Fatalf("removed consumer got %q", m)
		default:
		}
	})
}

func TestValidate(t *testing.T) {
	ok := func(*http.Request) (any, error) { return nil, nil }
	tests := []struct {
		name string
		opts Options
		svc  Service
		want string
	}{
		{"no handler", Options{}, Service{Name: "a"}, "no handler"},
		{"unknown local backend", Options{}, Service{Name: "a", Handler: ok, Backends: []string{"db"}}, "neither in Options.Backends"},
		{"registry backend without client", Options{}, Service{Name: "a", Handler: ok, Backends: []string{"acme/q"}}, "no Client"},
		{"topic without broker", Options{}, Service{Name: "a", Handler: ok, Setup: []Exposure{Topic("t")}}, "no Broker"},
		{"bad path", Options{}, Service{Name: "a", Handler: ok, Setup: []Exposure{Web("GET", "x", nil)}}, "must start with '/'"},
		{"bad cron", Options{}, Service{Name: "a", Handler: ok, Setup: []Exposure{Cron("every day")}}, "not a cron spec"},
		{"bad method", Options{}, Service{Name: "a", Handler: ok, Setup: []Exposure{Web("FETCH", "/", nil)}}, "is not one of"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := New(tc.opts).Start(t.Context(), []Service{tc.svc})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error with %q", err, tc.want)
			}
		})
	}
}

func TestDefinition(t *testing.T) {
	def := definition([]Service{{Name: "a", Backends: []string{"db", "acme/queue@^2"}, Permissions: []string{"orders:write"},
		Setup: []Exposure{Web("GET", "/a", nil), Topic("t"), Cron("@daily"), WebFallback(nil)}}})
	want := api.Definition{Endpoints: []api.Endpoint{{Name: "a", Backends: []string{"acme/queue@^2"}, Permissions: []string{"orders:write"},
		Exposures: []api.Exposure{{Type: "http", Method: "GET", Path: "/a"}, {Type: "topic", Topic: "t"}, {Type: "cron", Schedule: "@daily"}, {Type: "http-fallback"}}}}}
	gotJSON, _ := json.Marshal(def)
	wantJSON, _ := json.Marshal(want)
	if string(gotJSON) != string(wantJSON) {
		t.Errorf("got %s\nwant %s", gotJSON, wantJSON)
	}
}
