package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/muster-registry/muster/api"
)

// ListOptions pages a list. Zero values leave the server's defaults (limit
// 1000, first page).
type ListOptions struct {
	// Limit is the page size, 1 to 10000.
	Limit int
	// Marker is the previous page's Metadata.NextMarker (opaque).
	Marker string
}

func (o ListOptions) query() url.Values {
	q := url.Values{}
	setInt(q, "limit", o.Limit)
	setString(q, "marker", o.Marker)
	return q
}

// GetRevisionOptions selects the revision that GetRevision and
// SelectRevision answer. It has the fields of [ResolveOptions], which says
// what each does; the zero value asks for the revision the service's policy
// picks for an anonymous caller (the default revision when no route fits).
type GetRevisionOptions struct {
	// RevisionTag asks for that revision, bypassing the policy.
	RevisionTag string
	// Requester names the caller for the selection policy. It is sent as
	// ?requester= and as the X-Muster-Requester header (api.HeaderRequester).
	Requester string
	// Revision asks for the highest revision that satisfies this semver
	// constraint (such as "^1.2"), bypassing the policy.
	Revision string
	// Labels are sent as label.KEY=VALUE query parameters for the policy's
	// label matches.
	Labels map[string]string
	// Headers are sent as request headers for the policy's header matches,
	// such as X-Channel: beta.
	Headers http.Header
}

// InstanceListOptions filters and pages ListInstances.
type InstanceListOptions struct {
	// Tags: only instances that have all of them (sent as repeated ?tag=).
	Tags []string
	// RevisionTag: only instances of that revision.
	RevisionTag string
	// Status: only instances of that status, such as api.StatusPassing.
	Status string
	// Limit and Marker page the list; see ListOptions.
	Limit  int
	Marker string
}

// ServiceListOptions filters and pages ListServices.
type ServiceListOptions struct {
	// Namespace: only that namespace's services.
	Namespace string
	// Tags: only services that have all of them (sent as repeated ?tag=).
	Tags []string
	// Limit and Marker page the list; see ListOptions.
	Limit  int
	Marker string
}

// RegisterRevision registers a revision of the service ns/name (POST
// /v1/services/{ns}/{name}). Registering an existing tag again is idempotent
// and applies req.IsDefault if set.
func (c *Client) RegisterRevision(ctx context.Context, ns, name string, req api.RegisterRevisionRequest) (api.Revision, error) {
	var out api.Revision
	p, err := escapePath("/services/{}/{}", ns, name)
	if err != nil {
		return out, err
	}
	_, err = c.do(ctx, request{method: http.MethodPost, path: p, body: req, out: &out})
	return out, err
}

// GetRevision answers the revision of ns/name that opts asks for (GET
// /v1/services/{ns}/{name}): the one tagged opts.RevisionTag, the highest
// satisfying opts.Revision, or else the one the service's policy picks for
// the caller that opts describes (the default revision when no route fits).
// [Client.SelectRevision] also says which route picked it.
func (c *Client) GetRevision(ctx context.Context, ns, name string, opts GetRevisionOptions) (api.Revision, Index, error) {
	s, idx, err := c.SelectRevision(ctx, ns, name, opts)
	return s.Revision, idx, err
}

// ListRevisions lists the revisions of ns/name, newest semantic version first
// (GET /v1/services/{ns}/{name}/revisions).
func (c *Client) ListRevisions(ctx context.Context, ns, name string, opts ListOptions) (api.List[api.Revision], Index, error) {
	var out api.List[api.Revision]
	p, err := escapePath("/services/{}/{}/revisions", ns, name)
	if err != nil {
		return out, 0, err
	}
	idx, err := c.do(ctx, request{method: http.MethodGet, path: p, query: opts.query(), out: &out})
	return out, idx, err
}

// DeleteRevision deletes the revision tag of ns/name (DELETE
// /v1/services/{ns}/{name}/revisions/{tag}). A deleted default is replaced by
// the policy's choice.
func (c *Client) DeleteRevision(ctx context.Context, ns, name, tag string) error {
	p, err := escapePath("/services/{}/{}/revisions/{}", ns, name, tag)
	if err != nil {
		return err
	}
	_, err = c.do(ctx, request{method: http.MethodDelete, path: p})
	return err
}

// RegisterInstance registers a new instance of ns/name (POST
// /v1/services/{ns}/{name}/instances). The server makes an id when req.ID is
// empty; a live req.ID gets ErrInstanceExists. The answer carries the first
// heartbeat token.
func (c *Client) RegisterInstance(ctx context.Context, ns, name string, req api.RegisterInstanceRequest) (api.Registration, error) {
	var out api.Registration
	p, err := escapePath("/services/{}/{}/instances", ns, name)
	if err != nil {
		return out, err
	}
	_, err = c.do(ctx, registrationRequest(http.MethodPost, p, &req, &out))
	return out, err
}

// PutInstance registers the instance id of ns/name, replacing a live one of
// that id (PUT /v1/services/{ns}/{name}/instances/{id}): how a restarted
// process takes its id back. The answer carries a new token; the old one
// stops working.
func (c *Client) PutInstance(ctx context.Context, ns, name, id string, req api.RegisterInstanceRequest) (api.Registration, error) {
	var out api.Registration
	p, err := escapePath("/services/{}/{}/instances/{}", ns, name, id)
	if err != nil {
		return out, err
	}
	_, err = c.do(ctx, registrationRequest(http.MethodPut, p, &req, &out))
	return out, err
}

// PatchInstance changes the fields of req that are set (PATCH
// /v1/services/{ns}/{name}/instances/{id}).
func (c *Client) PatchInstance(ctx context.Context, ns, name, id string, req api.PatchInstanceRequest) (api.Instance, error) {
	var out api.Instance
	p, err := escapePath("/services/{}/{}/instances/{}", ns, name, id)
	if err != nil {
		return out, err
	}
	_, err = c.do(ctx, request{method: http.MethodPatch, path: p, body: req, out: &out})
	return out, err
}

// DeregisterInstance removes the instance gracefully (DELETE
// /v1/services/{ns}/{name}/instances/{id}).
func (c *Client) DeregisterInstance(ctx context.Context, ns, name, id string) error {
	p, err := escapePath("/services/{}/{}/instances/{}", ns, name, id)
	if err != nil {
		return err
	}
	_, err = c.do(ctx, request{method: http.MethodDelete, path: p})
	return err
}

// Heartbeat renews the instance with token and answers the next token and
// the new deadline (POST /v1/services/{ns}/{name}/instances/{id}/heartbeat).
// A spent or foreign token gets ErrTokenMismatch; an instance that is gone
// or expired gets ErrNotFound. [Heartbeater] does this on a schedule.
func (c *Client) Heartbeat(ctx context.Context, ns, name, id, token string) (api.HeartbeatResponse, error) {
	var out api.HeartbeatResponse
	p, err := escapePath("/services/{}/{}/instances/{}/heartbeat", ns, name, id)
	if err != nil {
		return out, err
	}
	_, err = c.do(ctx, request{method: http.MethodPost, path: p, raw: heartbeatBody(token), out: &out,
		fast: func(b []byte) bool { return parseHeartbeatAnswer(b, &out) }})
	return out, err
}

// GetInstance answers one instance (GET
// /v1/services/{ns}/{name}/instances/{id}).
func (c *Client) GetInstance(ctx context.Context, ns, name, id string) (api.Instance, Index, error) {
	var out api.Instance
	p, err := escapePath("/services/{}/{}/instances/{}", ns, name, id)
	if err != nil {
		return out, 0, err
	}
	idx, err := c.do(ctx, request{method: http.MethodGet, path: p, out: &out})
	return out, idx, err
}

// registrationRequest is the call that registers req at p, its answer
// decoded into out: both by hand when they can be.
func registrationRequest(method, p string, req *api.RegisterInstanceRequest, out *api.Registration) request {
	r := request{method: method, path: p, out: out, fast: registrationInto(out)}
	if raw, ok := registrationBody(req); ok {
		r.raw = raw
	} else {
		r.body = *req
	}
	return r
}

// registrationInto is the fast path of a registration's answer into out.
func registrationInto(out *api.Registration) func([]byte) bool {
	return func(body []byte) bool {
		r, ok := decodeRegistration(body)
		if ok {
			*out = r
		}
		return ok
	}
}

// ListInstances lists the instances of ns/name that match opts (GET
// /v1/services/{ns}/{name}/instances).
func (c *Client) ListInstances(ctx context.Context, ns, name string, opts InstanceListOptions) (api.List[api.Instance], Index, error) {
	var out api.List[api.Instance]
	p, err := escapePath("/services/{}/{}/instances", ns, name)
	if err != nil {
		return out, 0, err
	}
	q := ListOptions{Limit: opts.Limit, Marker: opts.Marker}.query()
	for _, t := range opts.Tags {
		q.Add("tag", t)
	}
	setString(q, "revision_tag", opts.RevisionTag)
	setString(q, "status", opts.Status)
	fast := func(body []byte) bool {
		l, ok := decodeInstanceList(body)
		if ok {
			out = l
		}
		return ok
	}
	idx, err := c.do(ctx, request{method: http.MethodGet, path: p, query: q, out: &out, fast: fast})
	return out, idx, err
}

// ListServices lists services with their default revision and instance
// counts (GET /v1/services).
func (c *Client) ListServices(ctx context.Context, opts ServiceListOptions) (api.List[api.ServiceSummary], Index, error) {
	var out api.List[api.ServiceSummary]
	q := ListOptions{Limit: opts.Limit, Marker: opts.Marker}.query()
	setString(q, "namespace", opts.Namespace)
	for _, t := range opts.Tags {
		q.Add("tag", t)
	}
	idx, err := c.do(ctx, request{method: http.MethodGet, path: "/services", query: q, out: &out})
	return out, idx, err
}

// URLMap answers the namespace's map of resources to public URLs, built from
// its passing instances, and the conflicts it resolved (GET /v1/url-map/{ns}).
func (c *Client) URLMap(ctx context.Context, ns string) (api.URLMap, error) {
	var out api.URLMap
	p, err := escapePath("/url-map/{}", ns)
	if err != nil {
		return out, err
	}
	_, err = c.do(ctx, request{method: http.MethodGet, path: p, out: &out})
	return out, err
}

// Status answers the node's id, role, leader, indexes and counts (GET
// /v1/status).
func (c *Client) Status(ctx context.Context) (api.Status, error) {
	var out api.Status
	_, err := c.do(ctx, request{method: http.MethodGet, path: "/status", out: &out})
	return out, err
}

// Health reports nil when the server answers its liveness check (GET
// /v1/health) with 2xx.
func (c *Client) Health(ctx context.Context) error {
	_, err := c.do(ctx, request{method: http.MethodGet, path: "/health"})
	return err
}
