package client_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/muster-registry/muster/api"
	"github.com/muster-registry/muster/client"
	"github.com/muster-registry/muster/internal/servertest"
)

func TestDefinitionRoutes(t *testing.T) {
	srv := servertest.Start(t, servertest.Options{})
	c, err := client.New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, _, err := c.GetDefinition(ctx, "shop", "orders"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("GetDefinition of nothing: %v, want ErrNotFound", err)
	}
	if _, err := c.PutDefinition(ctx, "shop", "orders", api.Definition{Endpoints: []api.Endpoint{{Name: "x",
		Exposures: []api.Exposure{{Type: "http", Method: "FETCH", Path: "/"}}}}}); !errors.Is(err, client.ErrValidation) {
		t.Fatalf("PutDefinition of a bad method: %v, want ErrValidationFailed", err)
	}
	def := api.Definition{Endpoints: []api.Endpoint{{Name: "create", Backends: []string{"acme/pay@^1"},
		Exposures: []api.Exposure{{Type: "http", Method: "POST", Path: "/orders/{id}"}}}}}
	diff, err := c.PutDefinition(ctx, "shop", "orders", def)
	if err != nil || !slices.Equal(diff.Added, []string{"create"}) || diff.Change != "definition" {
		t.Fatalf("PutDefinition: %+v, %v", diff, err)
	}
	if diff, err = c.PutDefinition(ctx, "shop", "orders", def); err != nil || len(diff.Added)+len(diff.Changed)+len(diff.Removed) != 0 {
		t.Fatalf("PutDefinition again: %+v, %v", diff, err)
	}
	got, idx, err := c.GetDefinition(ctx, "shop", "orders")
	if err != nil || idx == 0 || got.Endpoints[0].Exposures[0].Path != "/orders/{id}" {
		t.Fatalf("GetDefinition: %+v %d %v", got, idx, err)
	}
	rd, idx, err := c.Readiness(ctx, "shop", "orders")
	if err != nil || idx == 0 || rd.Ready || !slices.Equal(rd.Endpoints[0].Missing, []string{"acme/pay@^1"}) {
		t.Fatalf("Readiness: %+v %d %v", rd, idx, err)
	}
	deps, err := c.Dependents(ctx, "acme", "pay")
	if err != nil || deps.Service != "acme/pay" || len(deps.Direct) != 1 || deps.Direct[0].Endpoint != "create" {
		t.Fatalf("Dependents: %+v %v", deps, err)
	}
	g, err := c.Graph(ctx, "shop")
	if err != nil || !slices.Equal(g.StartupOrder, []string{"acme/pay", "shop/orders"}) {
		t.Fatalf("Graph: %+v %v", g, err)
	}
	if _, err := c.Graph(ctx, "Bad Namespace"); err == nil {
		t.Fatal("Graph of a bad namespace: no error")
	}
	if _, _, err := c.Readiness(ctx, "shop", ".."); !errors.Is(err, client.ErrInvalidArgument) {
		t.Fatalf("Readiness of '..': %v, want ErrInvalidArgument", err)
	}
}
