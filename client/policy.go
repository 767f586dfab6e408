package client

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/muster-registry/muster/api"
)

// Headers of GET /v1/services/{ns}/{name} that say how the server chose the
// revision (the server's names; not in package api).
const (
	headerRoute    = api.HeaderRoute
	headerFallback = api.HeaderFallback
)

// RouteHook is the Route of an answer picked by the embedding program's
// selection hook rather than by a policy route.
const RouteHook = api.RouteHook

// ResolveOptions describes the caller that Resolve (and a [Resolver])
// resolves a service for. The zero value is an anonymous caller: it gets
// what the policy's routes without a requester match pick, or the default
// revision.
//
// RevisionTag and Revision name the revision outright and bypass the policy;
// give at most one of them. Requester, Labels and Headers are what the
// policy's routes match on.
type ResolveOptions struct {
	// RevisionTag asks for that revision.
	RevisionTag string
	// Requester names the caller (?requester=, and the X-Muster-Requester
	// header). Routes match it against their requester globs, and a sticky
	// split keeps a requester on one side.
	Requester string
	// Revision asks for the highest revision that satisfies this semver
	// constraint, such as "^1.2" or ">=2.0.0-0".
	Revision string
	// Labels are sent as label.KEY=VALUE query parameters.
	Labels map[string]string
	// Headers are sent as request headers, such as X-Channel: beta; routes
	// match them by exact value. Accept, Authorization, Content-Type and
	// User-Agent are the client's own and are not taken from here.
	Headers http.Header
}

// request is the query and the headers that carry o.
func (o ResolveOptions) request() (url.Values, http.Header) {
	q := url.Values{}
	setString(q, "revision_tag", o.RevisionTag)
	setString(q, "revision", o.Revision)
	setString(q, "requester", o.Requester)
	for k, v := range o.Labels {
		q.Set("label."+k, v)
	}
	h := o.Headers.Clone()
	for _, own := range []string{"Accept", "Authorization", "Content-Type", "User-Agent"} {
		h.Del(own) // the client's own: never taken from the caller's headers
	}
	if o.Requester != "" {
		if h == nil {
			h = http.Header{}
		}
		h.Set(api.HeaderRequester, o.Requester)
	}
	return q, h
}

// Selection is a revision and how the server chose it: the answer of
// [Client.SelectRevision].
type Selection struct {
	// Revision is the chosen revision.
	Revision api.Revision
	// Route names the policy route that picked it, or is RouteHook when the
	// embedding program's hook did; empty when a tag or constraint named it
	// or no route fitted (the default revision).
	Route string
	// Fallback is true when the picked revision had no passing instance and
	// the policy's fallback_to_default gave the default revision instead.
	Fallback bool
}

// SelectRevision is GetRevision that also answers which route picked the
// revision and whether it fell back to the default (the X-Muster-Route and
// X-Muster-Fallback headers of GET /v1/services/{ns}/{name}). Unlike
// [Client.Resolve] it does not list the revision's instances.
func (c *Client) SelectRevision(ctx context.Context, ns, name string, opts GetRevisionOptions) (Selection, Index, error) {
	var out Selection
	p, err := escapePath("/services/{}/{}", ns, name)
	if err != nil {
		return out, 0, err
	}
	q, h := ResolveOptions(opts).request()
	var got http.Header
	idx, err := c.do(ctx, request{method: http.MethodGet, path: p, query: q, header: h, out: &out.Revision, respHeader: &got})
	if err != nil {
		return Selection{}, 0, err
	}
	out.Route = got.Get(headerRoute)
	out.Fallback = strings.EqualFold(got.Get(headerFallback), "true")
	return out, idx, nil
}

// GetPolicy answers the revision selection policy that ns/name follows (GET
// /v1/services/{ns}/{name}/policy): its own, or the default one
// (latest_semver, no routes) for a service without one, or one that does
// not exist.
func (c *Client) GetPolicy(ctx context.Context, ns, name string) (api.Policy, Index, error) {
	var out api.Policy
	p, err := escapePath("/services/{}/{}/policy", ns, name)
	if err != nil {
		return out, 0, err
	}
	idx, err := c.do(ctx, request{method: http.MethodGet, path: p, out: &out})
	return out, idx, err
}

// SetPolicy replaces the policy of ns/name (PUT
// /v1/services/{ns}/{name}/policy) and answers it as stored, with the
// defaults spelled out. The server checks it against the service's
// revisions: a route naming a revision that is not registered gets
// ErrValidation, with the field in APIError.Details. A new default rule
// re-evaluates the default revision at once.
func (c *Client) SetPolicy(ctx context.Context, ns, name string, policy api.Policy) (api.Policy, error) {
	var out api.Policy
	p, err := escapePath("/services/{}/{}/policy", ns, name)
	if err != nil {
		return out, err
	}
	_, err = c.do(ctx, request{method: http.MethodPut, path: p, body: policy, out: &out})
	return out, err
}

// DeletePolicy returns ns/name to the default policy (DELETE
// /v1/services/{ns}/{name}/policy). Deleting a policy that is not there
// succeeds.
func (c *Client) DeletePolicy(ctx context.Context, ns, name string) error {
	p, err := escapePath("/services/{}/{}/policy", ns, name)
	if err != nil {
		return err
	}
	_, err = c.do(ctx, request{method: http.MethodDelete, path: p})
	return err
}

// Resolve answers where a request of the caller that opts describes should
// go (GET /v1/resolve/{ns}/{name}): the revision the service's policy picks,
// the route that picked it, whether it fell back to the default, the
// revision's passing instances and the namespace's URL map. A service
// without revisions, or a tag or constraint that names none, gets
// ErrNotFound. A [Resolver] keeps such answers current without a round trip
// per read.
func (c *Client) Resolve(ctx context.Context, ns, name string, opts ResolveOptions) (api.Resolution, Index, error) {
	var out api.Resolution
	p, err := escapePath("/resolve/{}/{}", ns, name)
	if err != nil {
		return out, 0, err
	}
	q, h := opts.request()
	idx, err := c.do(ctx, request{method: http.MethodGet, path: p, query: q, header: h, out: &out})
	return out, idx, err
}
