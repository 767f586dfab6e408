package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/muster-registry/muster/api"
)

// PutDefinition stores the definition of the service ns/name: its endpoints,
// the backends each needs and how each is exposed (PUT
// /v1/services/{ns}/{name}/definition). It answers the endpoints added,
// removed and changed; storing the definition already stored changes
// nothing and answers empty lists. A definition the server refuses matches
// ErrValidation.
func (c *Client) PutDefinition(ctx context.Context, ns, name string, def api.Definition) (api.DefinitionDiff, error) {
	var out api.DefinitionDiff
	p, err := escapePath("/services/{}/{}/definition", ns, name)
	if err != nil {
		return out, err
	}
	if def.Endpoints == nil {
		def.Endpoints = []api.Endpoint{}
	}
	_, err = c.do(ctx, request{method: http.MethodPut, path: p, body: def, out: &out})
	return out, err
}

// GetDefinition answers the definition of the service ns/name (GET
// /v1/services/{ns}/{name}/definition) and its index. A service without a
// definition matches ErrNotFound.
func (c *Client) GetDefinition(ctx context.Context, ns, name string) (api.Definition, Index, error) {
	var out api.Definition
	p, err := escapePath("/services/{}/{}/definition", ns, name)
	if err != nil {
		return out, 0, err
	}
	idx, err := c.do(ctx, request{method: http.MethodGet, path: p, out: &out})
	return out, idx, err
}

// Readiness answers which endpoints of the service ns/name are enabled, and
// the backends each misses (GET /v1/services/{ns}/{name}/readiness), with
// its index: follow endpoint.enabled and endpoint.disabled events from it.
// A service without a definition matches ErrNotFound.
func (c *Client) Readiness(ctx context.Context, ns, name string) (api.Readiness, Index, error) {
	var out api.Readiness
	p, err := escapePath("/services/{}/{}/readiness", ns, name)
	if err != nil {
		return out, 0, err
	}
	idx, err := c.do(ctx, request{method: http.MethodGet, path: p, out: &out})
	return out, idx, err
}

// Dependents answers the endpoints that need the service ns/name as a
// backend, and every service that depends on it directly or through others
// (GET /v1/services/{ns}/{name}/dependents): what breaks if it goes down.
func (c *Client) Dependents(ctx context.Context, ns, name string) (api.Dependents, error) {
	var out api.Dependents
	p, err := escapePath("/services/{}/{}/dependents", ns, name)
	if err != nil {
		return out, err
	}
	_, err = c.do(ctx, request{method: http.MethodGet, path: p, out: &out})
	return out, err
}

// Graph answers the dependency graph of the services of namespace, or of
// every namespace when it is empty (GET /v1/graph): the edges from
// endpoints to backends, a startup order and the cycles.
func (c *Client) Graph(ctx context.Context, namespace string) (api.Graph, error) {
	var out api.Graph
	q := url.Values{}
	setString(q, "namespace", namespace)
	_, err := c.do(ctx, request{method: http.MethodGet, path: "/graph", query: q, out: &out})
	return out, err
}
