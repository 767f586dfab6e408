package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/muster-registry/muster/api"
	"github.com/muster-registry/muster/internal/servertest"
)

const ordersDefinition = `{"endpoints": [
  {"name": "update-order", "backends": ["acme/orders-db", "acme/queue@^2"],
   "exposures": [{"type": "http", "method": "POST", "path": "/orders/{id}"},
                 {"type": "topic", "topic": "orders.update"},
                 {"type": "cron", "schedule": "*/5 * * * *"}],
   "permissions": ["orders:write"]},
  {"name": "index", "exposures": [{"type": "http-fallback"}]}
]}`

func readiness(t *testing.T, base string) api.Readiness {
	t.Helper()
	var rd api.Readiness
	must(t, call(t, "GET", base+"/v1/services/acme/orders/readiness", nil, nil, &rd), http.StatusOK)
	return rd
}

// waitEndpointEvent waits for the next endpoint event of update-order after `after`.
func waitEndpointEvent(t *testing.T, base string, after uint64) (api.Event, api.EndpointStatePayload) {
	t.Helper()
	var list api.EventList
	url := fmt.Sprintf("%s/v1/events?service=orders&type=endpoint.enabled&type=endpoint.disabled&after=%d&wait=10", base, after)
	must(t, call(t, "GET", url, nil, nil, &list), http.StatusOK)
	if len(list.Events) == 0 {
		t.Fatal("no endpoint event within 10 s")
	}
	var p api.EndpointStatePayload
	if err := json.Unmarshal(list.Events[0].Payload, &p); err != nil {
		t.Fatal(err)
	}
	return list.Events[0], p
}

// The end-to-end flow: a backend with no instance disables the
// endpoint; its instance joining enables it; its timeout disables it again.
func TestEndpointLifecycleThroughHTTP(t *testing.T) {
	base := servertest.Start(t, servertest.Options{}).URL
	var diff api.DefinitionDiff
	resp := call(t, "PUT", base+"/v1/services/acme/orders/definition", ordersDefinition, nil, &diff)
	must(t, resp, http.StatusOK)
	if strings.Join(diff.Added, ",") != "index,update-order" {
		t.Fatalf("diff %+v", diff)
	}
	var def api.Definition
	must(t, call(t, "GET", base+"/v1/services/acme/orders/definition", nil, nil, &def), http.StatusOK)
	if len(def.Endpoints) != 2 || def.Endpoints[0].Exposures[2].Schedule != "*/5 * * * *" {
		t.Fatalf("definition read back: %+v", def)
	}
	rd := readiness(t, base)
	if rd.Ready || rd.Endpoints[0].Enabled || len(rd.Endpoints[0].Missing) != 2 || !rd.Endpoints[1].Enabled {
		t.Fatalf("initial readiness %+v", rd)
	}

	must(t, call(t, "POST", base+"/v1/services/acme/orders-db/instances", api.RegisterInstanceRequest{ID: "db-1"}, nil, nil), http.StatusCreated)
	after := index(call(t, "GET", base+"/v1/status", nil, nil, nil))
	must(t, call(t, "POST", base+"/v1/services/acme/queue/instances", api.RegisterInstanceRequest{ID: "q-1", RevisionTag: "2.3.0", HeartbeatTimeout: 3}, nil, nil), http.StatusCreated)
	ev, p := waitEndpointEvent(t, base, after)
	if ev.Type != api.EventEndpointEnabled || p.Endpoint != "update-order" || len(p.Missing) != 0 {
		t.Fatalf("after the queue joined: %s %+v", ev.Type, p)
	}
	if rd := readiness(t, base); !rd.Ready {
		t.Fatalf("readiness %+v, want ready", rd)
	}

	// No heartbeat: the queue instance times out and the endpoint is disabled.
	ev, p = waitEndpointEvent(t, base, ev.ID)
	if ev.Type != api.EventEndpointDisabled || strings.Join(p.Missing, ",") != "acme/queue@^2" {
		t.Fatalf("after the queue timed out: %s %+v", ev.Type, p)
	}

	var g api.Graph
	must(t, call(t, "GET", base+"/v1/graph?namespace=acme", nil, nil, &g), http.StatusOK)
	if strings.Join(g.StartupOrder, ",") != "acme/orders-db,acme/queue,acme/orders" || len(g.Edges) != 2 || len(g.Cycles) != 0 {
		t.Fatalf("graph %+v", g)
	}
	var deps api.Dependents
	must(t, call(t, "GET", base+"/v1/services/acme/queue/dependents", nil, nil, &deps), http.StatusOK)
	if len(deps.Direct) != 1 || deps.Direct[0].Endpoint != "update-order" || strings.Join(deps.Transitive, ",") != "acme/orders" {
		t.Fatalf("dependents %+v", deps)
	}

	// A definition change is a diff, in a service.update event.
	var d2 api.DefinitionDiff
	must(t, call(t, "PUT", base+"/v1/services/acme/orders/definition", `{"endpoints":[{"name":"index","exposures":[{"type":"http-fallback"}]},{"name":"report","backends":["acme/orders-db"]}]}`, nil, &d2), http.StatusOK)
	if strings.Join(d2.Added, ",") != "report" || strings.Join(d2.Removed, ",") != "update-order" || len(d2.Changed) != 0 {
		t.Fatalf("diff %+v", d2)
	}
}

func TestDefinitionValidationThroughHTTP(t *testing.T) {
	base := servertest.Start(t, servertest.Options{}).URL
	cases := []struct{ name, body, field string }{
		{"duplicate endpoint", `{"endpoints":[{"name":"a"},{"name":"a"}]}`, "endpoints[1].name"},
		{"unknown exposure", `{"endpoints":[{"name":"a","exposures":[{"type":"grpc"}]}]}`, "endpoints[0].exposures[0].type"},
		{"bad method", `{"endpoints":[{"name":"a","exposures":[{"type":"http","method":"FETCH","path":"/x"}]}]}`, "method"},
		{"bad cron", `{"endpoints":[{"name":"a","exposures":[{"type":"cron","schedule":"every day"}]}]}`, "schedule"},
		{"two fallbacks", `{"endpoints":[{"name":"a","exposures":[{"type":"http-fallback"}]},{"name":"b","exposures":[{"type":"http-fallback"}]}]}`, "http-fallback"},
		{"unknown field", `{"endpoints":[{"name":"a","backend":["x/y"]}]}`, "backend"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var e api.Error
			must(t, call(t, "PUT", base+"/v1/services/acme/orders/definition", tc.body, nil, &e), http.StatusBadRequest)
			if e.Type != api.ErrValidationFailed || !strings.Contains(e.Details, tc.field) {
				t.Fatalf("error %+v does not name %s", e, tc.field)
			}
		})
	}
	must(t, call(t, "GET", base+"/v1/services/acme/orders/definition", nil, nil, nil), http.StatusNotFound)
	must(t, call(t, "GET", base+"/v1/services/acme/orders/readiness", nil, nil, nil), http.StatusNotFound)
}

// Every read refuses a query parameter it does not know, so a misspelt
// filter never silently widens an answer; /v1/health stays lenient for probes.
func TestUnknownQueryParameters(t *testing.T) {
	base := servertest.Start(t, servertest.Options{})
	must(t, call(t, "POST", base.URL+"/v1/services/acme/web/instances", api.RegisterInstanceRequest{ID: "i1"}, nil, nil), http.StatusCreated)
	for _, path := range []string{
		"/v1/status?namespce=acme", "/v1/url-map/acme?servce=web", "/v1/services/acme/web/instances/i1?x=1",
		"/v1/services/acme/web/instances?tags=a", "/v1/services?namesapce=acme", "/v1/events?afterr=1",
		"/v1/services/acme/web/policy?x=1", "/v1/graph?ns=acme",
	} {
		var e api.Error
		resp := call(t, "GET", base.URL+path, nil, nil, &e)
		if resp.StatusCode != http.StatusBadRequest || e.Type != api.ErrBadRequest || !strings.Contains(e.Details, "unknown query parameter") {
			t.Errorf("GET %s = %d %+v, want 400 naming the unknown parameter", path, resp.StatusCode, e)
		}
	}
	must(t, call(t, "GET", base.URL+"/v1/health?probe=lb", nil, nil, nil), http.StatusOK)
}
