package host

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/muster-registry/muster/api"
	"github.com/muster-registry/muster/client"
	"github.com/muster-registry/muster/internal/servertest"
)

// eventually polls cond every 20ms until it holds or d has passed.
func eventually(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// nextEndpointEvent long-polls the next endpoint event of ns/name about
// endpoint after *after, skipping those of other endpoints.
func nextEndpointEvent(t *testing.T, c *client.Client, ns, name, endpoint string, after *uint64) (string, api.EndpointStatePayload) {
	t.Helper()
	for {
		typ, p := nextAnyEndpointEvent(t, c, ns, name, after)
		if p.Endpoint == endpoint {
			return typ, p
		}
	}
}

func nextAnyEndpointEvent(t *testing.T, c *client.Client, ns, name string, after *uint64) (string, api.EndpointStatePayload) {
	t.Helper()
	list, err := c.Events(t.Context(), client.EventQuery{Namespace: ns, Service: name, After: *after, Limit: 1,
		Types: []string{api.EventEndpointEnabled, api.EventEndpointDisabled}, Wait: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Events) == 0 {
		t.Fatal("no endpoint event within 10s")
	}
	ev := list.Events[0]
	*after = ev.ID
	var p api.EndpointStatePayload
	if err := json.Unmarshal(ev.Payload, &p); err != nil {
		t.Fatal(err)
	}
	return ev.Type, p
}

func TestHostWithRegistry(t *testing.T) {
	srv := servertest.Start(t, servertest.Options{})
	c, err := client.New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	reply := func(v string) HandlerFunc { return func(*http.Request) (any, error) { return v, nil } }
	services := []Service{
		{Name: "create", Handler: reply("created"), Backends: []string{"acme/queue@^2"},
			Setup: []Exposure{Web("POST", "/orders", nil)}},
		{Name: "list", Handler: reply("list"), Setup: []Exposure{Web("GET", "/orders", text("orders: %v"))}},
	}
	_, idx, _ := c.Readiness(ctx, "shop", "orders") // 404: no definition yet; idx is 0
	after := uint64(idx)
	h := startHost(t, Options{Client: c, Namespace: "shop", ServiceName: "orders", HeartbeatTimeout: 10 * time.Second,
		Watch: client.WatcherOptions{Wait: 5 * time.Second}}, services)

	// The definition is stored, the instance registered, the endpoint
	// without an instance of its backend disabled, in the registry and here.
	def, _, err := c.GetDefinition(ctx, "shop", "orders")
	if err != nil || len(def.Endpoints) != 2 || !slices.Equal(def.Endpoints[0].Backends, []string{"acme/queue@^2"}) {
		t.Fatalf("stored definition: %+v, %v", def, err)
	}
	if id := h.State().InstanceID; id == "" {
		t.Fatal("no instance registered")
	}
	insts, _, err := c.ListInstances(ctx, "shop", "orders", client.InstanceListOptions{})
	if err != nil || len(insts.Values) != 1 {
		t.Fatalf("instances of shop/orders: %+v, %v", insts.Values, err)
	}
	rd, _, err := c.Readiness(ctx, "shop", "orders")
	if err != nil || rd.Ready || rd.Endpoints[0].Enabled || !slices.Equal(rd.Endpoints[0].Missing, []string{"acme/queue@^2"}) || !rd.Endpoints[1].Enabled {
		t.Fatalf("readiness: %+v, %v", rd, err)
	}
	typ, p := nextEndpointEvent(t, c, "shop", "orders", "create", &after)
	if typ != api.EventEndpointDisabled || p.Endpoint != "create" {
		t.Fatalf("first endpoint event: %s %+v", typ, p)
	}
	if w := do(h, "POST", "/orders", ""); w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Fatalf("POST /orders without a queue: %d", w.Code)
	}
	if w := do(h, "GET", "/orders", ""); w.Code != 200 || w.Body.String() != "orders: list" {
		t.Fatalf("GET /orders: %d %q", w.Code, w.Body.String())
	}

	// An instance of a revision outside the constraint changes nothing.
	if _, err := c.RegisterInstance(ctx, "acme", "queue", api.RegisterInstanceRequest{RevisionTag: "1.4.0", HeartbeatTimeout: 60}); err != nil {
		t.Fatal(err)
	}
	// One that fits enables the endpoint; without heartbeats it times out
	// after 3s and disables it again.
	if _, err := c.RegisterInstance(ctx, "acme", "queue", api.RegisterInstanceRequest{RevisionTag: "2.1.0", HeartbeatTimeout: 3}); err != nil {
		t.Fatal(err)
	}
	typ, p = nextEndpointEvent(t, c, "shop", "orders", "create", &after)
	if typ != api.EventEndpointEnabled || p.Endpoint != "create" {
		t.Fatalf("after the queue joined: %s %+v", typ, p)
	}
	eventually(t, "POST /orders answers 200", 5*time.Second, func() bool { return do(h, "POST", "/orders", "").Code == 200 })
	typ, p = nextEndpointEvent(t, c, "shop", "orders", "create", &after)
	if typ != api.EventEndpointDisabled || p.Endpoint != "create" || !slices.Equal(p.Missing, []string{"acme/queue@^2"}) {
		t.Fatalf("after the queue timed out: %s %+v", typ, p)
	}
	eventually(t, "POST /orders answers 503", 5*time.Second, func() bool { return do(h, "POST", "/orders", "").Code == 503 })

	// An edit in the registry (as `muster` would make it) is applied: the
	// route moves, and an endpoint without a handler here is reported.
	def.Endpoints[1].Exposures = []api.Exposure{{Type: "http", Method: "GET", Path: "/all-orders"}}
	def.Endpoints = append(def.Endpoints, api.Endpoint{Name: "stranger", Exposures: []api.Exposure{{Type: "http", Method: "GET", Path: "/x"}}})
	if _, err := c.PutDefinition(ctx, "shop", "orders", def); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the registry's route is served", 5*time.Second, func() bool {
		w := do(h, "GET", "/all-orders", "")
		return w.Code == 200 && w.Body.String() == "orders: list" // the handler's render function is kept
	})
	if w := do(h, "GET", "/orders", ""); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET /orders after the move: %d, want 405 (POST /orders is still there)", w.Code)
	}
	if st := h.State(); !slices.Equal(st.Unknown, []string{"stranger"}) {
		t.Errorf("unknown endpoints: %v", st.Unknown)
	}

	// Stop deregisters the instance.
	if err := h.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	insts, _, _ = c.ListInstances(ctx, "shop", "orders", client.InstanceListOptions{})
	if len(insts.Values) != 0 {
		t.Errorf("instances after Stop: %+v", insts.Values)
	}
}
