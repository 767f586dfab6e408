package registry

import (
	"errors"
	"slices"
	"testing"

	"github.com/muster-registry/muster/api"
)

func TestValidateDefinition(t *testing.T) {
	ep := func(name string, backends []string, xs ...api.Exposure) api.Endpoint {
		return api.Endpoint{Name: name, Backends: backends, Exposures: xs}
	}
	web := func(m, p string) api.Exposure { return api.Exposure{Type: "http", Method: m, Path: p} }
	cases := []struct {
		name  string
		def   api.Definition
		field string // "" when valid
	}{
		{"the issue's example", api.Definition{Endpoints: []api.Endpoint{
			{Name: "update-order", Backends: []string{"acme/orders-db", "acme/queue@^2"},
				Exposures:   []api.Exposure{web("POST", "/orders/{id}"), {Type: "topic", Topic: "orders.update"}, {Type: "cron", Schedule: "*/5 * * * *"}},
				Permissions: []string{"orders:write"}},
			ep("index", nil, api.Exposure{Type: "http-fallback"}),
		}}, ""},
		{"empty", api.Definition{}, ""},
		{"ANY method", api.Definition{Endpoints: []api.Endpoint{ep("a", nil, web("ANY", "/x"))}}, ""},
		{"@every cron", api.Definition{Endpoints: []api.Endpoint{ep("a", nil, api.Exposure{Type: "cron", Schedule: "@every 1m"})}}, ""},
		{"duplicate names", api.Definition{Endpoints: []api.Endpoint{ep("a", nil), ep("a", nil)}}, "endpoints[1].name"},
		{"bad name", api.Definition{Endpoints: []api.Endpoint{ep("-a", nil)}}, "endpoints[0].name"},
		{"unknown exposure", api.Definition{Endpoints: []api.Endpoint{ep("a", nil, api.Exposure{Type: "grpc"})}}, "endpoints[0].exposures[0].type"},
		{"bad method", api.Definition{Endpoints: []api.Endpoint{ep("a", nil, web("FETCH", "/x"))}}, "endpoints[0].exposures[0].method"},
		{"relative path", api.Definition{Endpoints: []api.Endpoint{ep("a", nil, web("GET", "x"))}}, "endpoints[0].exposures[0].path"},
		{"bad wildcard", api.Definition{Endpoints: []api.Endpoint{ep("a", nil, web("GET", "/a/{id"))}}, "endpoints[0].exposures[0].path"},
		{"repeated wildcard", api.Definition{Endpoints: []api.Endpoint{ep("a", nil, web("GET", "/{id}/{id}"))}}, "endpoints[0].exposures[0].path"},
		{"same route twice", api.Definition{Endpoints: []api.Endpoint{ep("a", nil, web("GET", "/x")), ep("b", nil, web("GET", "/x"))}}, "endpoints[1].exposures[0]"},
		{"bad cron", api.Definition{Endpoints: []api.Endpoint{ep("a", nil, api.Exposure{Type: "cron", Schedule: "* * *"})}}, "endpoints[0].exposures[0].schedule"},
		{"bad topic", api.Definition{Endpoints: []api.Endpoint{ep("a", nil, api.Exposure{Type: "topic", Topic: ""})}}, "endpoints[0].exposures[0].topic"},
		{"field of another type", api.Definition{Endpoints: []api.Endpoint{ep("a", nil, api.Exposure{Type: "topic", Topic: "t", Path: "/x"})}}, "endpoints[0].exposures[0].path"},
		{"two fallbacks", api.Definition{Endpoints: []api.Endpoint{ep("a", nil, api.Exposure{Type: "http-fallback"}), ep("b", nil, api.Exposure{Type: "http-fallback"})}}, "endpoints[1].exposures[0].type"},
		{"bad backend", api.Definition{Endpoints: []api.Endpoint{ep("a", []string{"acme"})}}, "endpoints[0].backends[0]"},
		{"bad backend constraint", api.Definition{Endpoints: []api.Endpoint{ep("a", []string{"acme/q@>>2"})}}, "endpoints[0].backends[0]"},
		{"empty backend constraint", api.Definition{Endpoints: []api.Endpoint{ep("a", []string{"acme/q@"})}}, "endpoints[0].backends[0]"},
		{"backend twice", api.Definition{Endpoints: []api.Endpoint{ep("a", []string{"acme/q", "acme/q"})}}, "endpoints[0].backends[1]"},
		{"bad permission", api.Definition{Endpoints: []api.Endpoint{{Name: "a", Permissions: []string{"has space"}}}}, "endpoints[0].permissions[0]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateDefinition(&tc.def)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("valid definition refused: %v", err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field {
				t.Fatalf("err = %v, want a FieldError for %s", err, tc.field)
			}
		})
	}
}

func TestBackendAccepts(t *testing.T) {
	cases := []struct {
		ref, tag string
		want     bool
	}{
		{"acme/q", "", true}, {"acme/q", "latest", true}, {"acme/q@^2", "2.1.0", true},
		{"acme/q@^2", "1.9.0", false}, {"acme/q@^2", "", false}, {"acme/q@^2", "main", false},
		{"acme/q@>=2.0.0-0", "2.0.0-rc.1", true}, {"acme/q@~1.3", "v1.3.7", true},
	}
	for _, tc := range cases {
		b, err := ParseBackend(tc.ref)
		if err != nil {
			t.Fatal(err)
		}
		if got := b.Accepts(tc.tag); got != tc.want {
			t.Errorf("%s accepts %q = %v, want %v", tc.ref, tc.tag, got, tc.want)
		}
	}
}

func TestDiffDefinitions(t *testing.T) {
	old := &api.Definition{Endpoints: []api.Endpoint{{Name: "a"}, {Name: "b", Backends: []string{"x/y"}}, {Name: "c", Permissions: []string{}}}}
	new := &api.Definition{Endpoints: []api.Endpoint{{Name: "c"}, {Name: "b", Backends: []string{"x/z"}}, {Name: "d"}}}
	d := DiffDefinitions(old, new)
	if !slices.Equal(d.Added, []string{"d"}) || !slices.Equal(d.Removed, []string{"a"}) || !slices.Equal(d.Changed, []string{"b"}) {
		t.Fatalf("diff = %+v", d)
	}
	if d := DiffDefinitions(nil, old); len(d.Added) != 3 || len(d.Removed)+len(d.Changed) != 0 {
		t.Fatalf("diff from nothing = %+v", d)
	}
}

func TestBuildGraph(t *testing.T) {
	defs := map[string]*api.Definition{
		"a/web":   {Endpoints: []api.Endpoint{{Name: "page", Backends: []string{"a/api", "a/cache"}}}},
		"a/api":   {Endpoints: []api.Endpoint{{Name: "get", Backends: []string{"a/db@^3"}}}},
		"a/ping":  {Endpoints: []api.Endpoint{{Name: "p", Backends: []string{"a/pong"}}}},
		"a/pong":  {Endpoints: []api.Endpoint{{Name: "p", Backends: []string{"a/ping"}}}},
		"a/loner": {Endpoints: []api.Endpoint{{Name: "self", Backends: []string{"a/loner"}}}},
	}
	g := BuildGraph(defs, []string{"a/idle"})
	want := []string{"a/api", "a/cache", "a/db", "a/idle", "a/loner", "a/ping", "a/pong", "a/web"}
	if !slices.Equal(g.Nodes, want) {
		t.Fatalf("nodes %v", g.Nodes)
	}
	if len(g.Edges) != 6 || g.Edges[0].From != "a/api" || g.Edges[0].Backend != "a/db@^3" || g.Edges[0].To != "a/db" {
		t.Fatalf("edges %+v", g.Edges)
	}
	pos := map[string]int{}
	for i, n := range g.StartupOrder {
		pos[n] = i
	}
	if len(g.StartupOrder) != len(want) {
		t.Fatalf("startup order %v misses nodes", g.StartupOrder)
	}
	for _, e := range g.Edges {
		if e.From != e.To && !(pos[e.To] < pos[e.From]) && !inCycle(g.Cycles, e.From, e.To) {
			t.Errorf("%s starts before its backend %s: %v", e.From, e.To, g.StartupOrder)
		}
	}
	if len(g.Cycles) != 2 || !slices.Equal(g.Cycles[0], []string{"a/loner"}) || !slices.Equal(g.Cycles[1], []string{"a/ping", "a/pong"}) {
		t.Fatalf("cycles %v", g.Cycles)
	}
}

func inCycle(cycles [][]string, a, b string) bool {
	for _, c := range cycles {
		if slices.Contains(c, a) && slices.Contains(c, b) {
			return true
		}
	}
	return false
}

func TestDependents(t *testing.T) {
	defs := map[string]*api.Definition{
		"a/web": {Endpoints: []api.Endpoint{{Name: "page", Backends: []string{"a/api"}}, {Name: "health"}}},
		"a/api": {Endpoints: []api.Endpoint{{Name: "get", Backends: []string{"a/db"}}, {Name: "put", Backends: []string{"a/db@^3"}}}},
		"a/bi":  {Endpoints: []api.Endpoint{{Name: "report", Backends: []string{"a/db"}}}},
	}
	direct, all := Dependents(defs, "a/db")
	if len(direct) != 3 || direct[0] != (api.Dependent{Service: "a/api", Endpoint: "get"}) || direct[2].Service != "a/bi" {
		t.Fatalf("direct %+v", direct)
	}
	if !slices.Equal(all, []string{"a/api", "a/bi", "a/web"}) {
		t.Fatalf("transitive %v", all)
	}
	if direct, all := Dependents(defs, "a/web"); len(direct) != 0 || len(all) != 0 {
		t.Fatalf("nothing needs a/web: %v %v", direct, all)
	}
}
