package client

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/muster-registry/muster/api"
)

func TestNew(t *testing.T) {
	tests := []struct {
		addr     string
		wantBase string // empty: New must fail
	}{
		{"http://127.0.0.1:7410", "http://127.0.0.1:7410/v1"},
		{"http://127.0.0.1:7410/", "http://127.0.0.1:7410/v1"},
		{"https://muster.example.com", "https://muster.example.com/v1"},
		{"127.0.0.1:7410", "http://127.0.0.1:7410/v1"},
		{"http://gateway.example.com/muster/", "http://gateway.example.com/muster/v1"},
		{"ftp://muster.example.com", ""},
		{"http://", ""},
		{"http://host:7410/?x=1", ""},
		{"http://host:7410/#frag", ""},
		{"http://host:port:bad", ""},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			c, err := New(tt.addr)
			if tt.wantBase == "" {
				if err == nil {
					t.Fatalf("New(%q) = base %q, want an error", tt.addr, c.base)
				}
				return
			}
			if err != nil {
				t.Fatalf("New(%q): %v", tt.addr, err)
			}
			if c.base != tt.wantBase {
				t.Errorf("base = %q, want %q", c.base, tt.wantBase)
			}
		})
	}
}

// seen is a request as the server received it.
type seen struct {
	Method, RequestURI, Body string
	Header                   http.Header
}

// recordingServer answers every request with status and body, with
// X-Muster-Index: 42, and records what it received.
func recordingServer(t *testing.T, status int, body string) (*Client, func() seen, *httptest.Server) {
	t.Helper()
	var mu sync.Mutex
	var last seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		last = seen{Method: r.Method, RequestURI: r.RequestURI, Body: string(b), Header: r.Header.Clone()}
		mu.Unlock()
		w.Header().Set(api.HeaderIndex, "42")
		w.Header().Set(api.HeaderRequestID, "req-from-header")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	c, err := New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return c, func() seen { mu.Lock(); defer mu.Unlock(); return last }, srv
}

func TestRoutes(t *testing.T) {
	yes := true
	tags := []string{"a"}
	created := time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.UTC)
	rev := api.Revision{Namespace: "acme", Name: "web", RevisionTag: "1.2.9", IsDefault: true, CreatedAt: created, Metadata: map[string]string{"k": "v"}}
	inst := api.Instance{Namespace: "acme", Service: "web", ID: "web 1/a", Port: 80, Status: api.StatusPassing, RegisteredAt: created}
	reg := api.Registration{Instance: inst, Token: "t1"}
	next := "m2"
	ctx := context.Background()
	policy := api.Policy{
		DefaultRule: api.RuleLatestStable,
		Routes: []api.PolicyRoute{{
			Name: "beta", Match: &api.PolicyMatch{Headers: map[string]string{"X-Channel": "beta"}},
			Split: []api.SplitEntry{{Revision: "1.0.0", Weight: 90}, {Revision: "2.0.0", Weight: 10}}, Sticky: api.StickyRequester,
		}},
		FallbackToDefault: true,
	}
	policyJSON := `{"default_rule":"latest_stable","routes":[{"name":"beta","match":{"headers":{"X-Channel":"beta"}},` +
		`"split":[{"revision":"1.0.0","weight":90},{"revision":"2.0.0","weight":10}],"sticky":"requester"}],"fallback_to_default":true}`
	resolution := api.Resolution{Revision: rev, Route: "beta", Fallback: true, Instances: []api.Instance{inst}, URLMap: map[string]string{"users": "https://u"}}

	tests := []struct {
		name     string
		call     func(c *Client) (any, Index, error)
		method   string
		uri      string // as sent on the wire
		body     string // the JSON sent, or empty
		status   int
		answer   any // encoded as the body, and what the call must return
		hasIndex bool
	}{
		{"RegisterRevision", func(c *Client) (any, Index, error) {
			v, err := c.RegisterRevision(ctx, "acme", "web", api.RegisterRevisionRequest{RevisionTag: "1.2.9", IsDefault: &yes})
			return v, 0, err
		}, "POST", "/v1/services/acme/web", `{"revision_tag":"1.2.9","is_default":true}`, 201, rev, false},
		{"GetRevision", func(c *Client) (any, Index, error) {
			return c.GetRevision(ctx, "acme", "web", GetRevisionOptions{RevisionTag: "1.2.9", Requester: "billing"})
		}, "GET", "/v1/services/acme/web?requester=billing&revision_tag=1.2.9", "", 200, rev, true},
		{"GetRevision by constraint and labels", func(c *Client) (any, Index, error) {
			return c.GetRevision(ctx, "acme", "web", GetRevisionOptions{Revision: "^1.2", Labels: map[string]string{"env": "prod", "zone": "a b"}})
		}, "GET", "/v1/services/acme/web?label.env=prod&label.zone=a+b&revision=%5E1.2", "", 200, rev, true},
		{"GetPolicy", func(c *Client) (any, Index, error) {
			return c.GetPolicy(ctx, "acme", "web")
		}, "GET", "/v1/services/acme/web/policy", "", 200, policy, true},
		{"SetPolicy", func(c *Client) (any, Index, error) {
			v, err := c.SetPolicy(ctx, "acme", "web", policy)
			return v, 0, err
		}, "PUT", "/v1/services/acme/web/policy", policyJSON, 200, policy, false},
		{"DeletePolicy", func(c *Client) (any, Index, error) {
			return nil, 0, c.DeletePolicy(ctx, "acme", "web")
		}, "DELETE", "/v1/services/acme/web/policy", "", 204, nil, false},
		{"Resolve", func(c *Client) (any, Index, error) {
			return c.Resolve(ctx, "acme", "web", ResolveOptions{Requester: "billing", Labels: map[string]string{"env": "prod"}})
		}, "GET", "/v1/resolve/acme/web?label.env=prod&requester=billing", "", 200, resolution, true},
		{"Resolve by tag escapes the service", func(c *Client) (any, Index, error) {
			return c.Resolve(ctx, "acme", "web/x", ResolveOptions{RevisionTag: "1.2.9"})
		}, "GET", "/v1/resolve/acme/web%2Fx?revision_tag=1.2.9", "", 200, resolution, true},
		{"GetRevision default", func(c *Client) (any, Index, error) {
			return c.GetRevision(ctx, "acme", "web", GetRevisionOptions{})
		}, "GET", "/v1/services/acme/web", "", 200, rev, true},
		{"ListRevisions", func(c *Client) (any, Index, error) {
			return c.ListRevisions(ctx, "acme", "web", ListOptions{Limit: 10, Marker: "m1"})
		}, "GET", "/v1/services/acme/web/revisions?limit=10&marker=m1", "", 200,
			api.List[api.Revision]{Values: []api.Revision{rev}, Metadata: api.ListMetadata{Count: 1, Limit: 10, NextMarker: &next}}, true},
		{"DeleteRevision escapes the tag", func(c *Client) (any, Index, error) {
			return nil, 0, c.DeleteRevision(ctx, "acme", "web", "1.0/x y")
		}, "DELETE", "/v1/services/acme/web/revisions/1.0%2Fx%20y", "", 204, nil, false},
		{"RegisterInstance", func(c *Client) (any, Index, error) {
			v, err := c.RegisterInstance(ctx, "acme", "web", api.RegisterInstanceRequest{Port: 80})
			return v, 0, err
		}, "POST", "/v1/services/acme/web/instances", `{"port":80}`, 201, reg, false},
		{"PutInstance escapes the id", func(c *Client) (any, Index, error) {
			v, err := c.PutInstance(ctx, "acme", "web", "web 1/a", api.RegisterInstanceRequest{Port: 80})
			return v, 0, err
		}, "PUT", "/v1/services/acme/web/instances/web%201%2Fa", `{"port":80}`, 200, reg, false},
		{"PatchInstance", func(c *Client) (any, Index, error) {
			v, err := c.PatchInstance(ctx, "acme", "web", "i1", api.PatchInstanceRequest{Tags: &tags})
			return v, 0, err
		}, "PATCH", "/v1/services/acme/web/instances/i1", `{"tags":["a"]}`, 200, inst, false},
		{"DeregisterInstance", func(c *Client) (any, Index, error) {
			return nil, 0, c.DeregisterInstance(ctx, "acme", "web", "i1")
		}, "DELETE", "/v1/services/acme/web/instances/i1", "", 204, nil, false},
		{"Heartbeat", func(c *Client) (any, Index, error) {
			v, err := c.Heartbeat(ctx, "acme", "web", "i1", "t1")
			return v, 0, err
		}, "POST", "/v1/services/acme/web/instances/i1/heartbeat", `{"token":"t1"}`, 200,
			api.HeartbeatResponse{Token: "t2", ExpiresAt: created}, false},
		{"GetInstance", func(c *Client) (any, Index, error) {
			return c.GetInstance(ctx, "acme", "web", "i1")
		}, "GET", "/v1/services/acme/web/instances/i1", "", 200, inst, true},
		{"GetInstance escapes every segment", func(c *Client) (any, Index, error) {
			return c.GetInstance(ctx, "a/b", "?web", "/i1")
		}, "GET", "/v1/services/a%2Fb/%3Fweb/instances/%2Fi1", "", 200, inst, true},
		{"ListInstances", func(c *Client) (any, Index, error) {
			return c.ListInstances(ctx, "acme", "web", InstanceListOptions{
				Tags: []string{"a", "b"}, RevisionTag: "1.0.0", Status: api.StatusPassing, Limit: 5, Marker: "m",
			})
		}, "GET", "/v1/services/acme/web/instances?limit=5&marker=m&revision_tag=1.0.0&status=passing&tag=a&tag=b", "", 200,
			api.List[api.Instance]{Values: []api.Instance{inst}, Metadata: api.ListMetadata{Count: 1, Limit: 5}}, true},
		{"ListServices", func(c *Client) (any, Index, error) {
			return c.ListServices(ctx, ServiceListOptions{Namespace: "acme", Tags: []string{"x"}, Limit: 2})
		}, "GET", "/v1/services?limit=2&namespace=acme&tag=x", "", 200,
			api.List[api.ServiceSummary]{Values: []api.ServiceSummary{{Namespace: "acme", Name: "web", DefaultRevision: &rev, Instances: 3, Passing: 2}}}, true},
		{"Events", func(c *Client) (any, Index, error) {
			v, err := c.Events(ctx, EventQuery{Namespace: "acme", Service: "web", Types: []string{"a", "b"}, After: 7, Limit: 3, Wait: 1500 * time.Millisecond})
			return v, 0, err
		}, "GET", "/v1/events?after=7&limit=3&namespace=acme&service=web&type=a&type=b&wait=2", "", 200,
			api.EventList{Events: []api.Event{{ID: 8, Type: api.EventInstanceJoin, Time: created, Payload: json.RawMessage(`{"id":"i1"}`)}}, Next: 8}, false},
		{"URLMap", func(c *Client) (any, Index, error) {
			v, err := c.URLMap(ctx, "acme")
			return v, 0, err
		}, "GET", "/v1/url-map/acme", "", 200,
			api.URLMap{URLMap: map[string]string{"users": "https://u"}, Conflicts: []api.URLMapConflict{{Resource: "users", Chosen: "https://u", Candidates: []string{"https://u", "https://v"}}}}, false},
		{"Status", func(c *Client) (any, Index, error) {
			v, err := c.Status(ctx)
			return v, 0, err
		}, "GET", "/v1/status", "", 200, api.Status{NodeID: "n1", Role: "leader", EventIndex: 9}, false},
		{"Health", func(c *Client) (any, Index, error) {
			return nil, 0, c.Health(ctx)
		}, "GET", "/v1/health", "", 200, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := ""
			if tt.answer != nil {
				b, err := json.Marshal(tt.answer)
				if err != nil {
					t.Fatal(err)
				}
				body = string(b)
			}
			c, last, _ := recordingServer(t, tt.status, body)
			got, idx, err := tt.call(c)
			if err != nil {
				t.Fatalf("call: %v", err)
			}
			r := last()
			if r.Method != tt.method || r.RequestURI != tt.uri {
				t.Errorf("sent %s %s, want %s %s", r.Method, r.RequestURI, tt.method, tt.uri)
			}
			if r.Body != tt.body {
				t.Errorf("sent body %q, want %q", r.Body, tt.body)
			}
			if tt.answer != nil && !reflect.DeepEqual(got, tt.answer) {
				t.Errorf("answer\n got %#v\nwant %#v", got, tt.answer)
			}
			if tt.hasIndex && idx != 42 {
				t.Errorf("index = %d, want 42", idx)
			}
		})
	}
}

func TestRequestHeaders(t *testing.T) {
	c, last, srv := recordingServer(t, 200, `{}`)
	if _, err := c.Heartbeat(t.Context(), "acme", "web", "i1", "t"); err != nil {
		t.Fatal(err)
	}
	h := last().Header
	if h.Get("Authorization") != "" || h.Get("User-Agent") != DefaultUserAgent ||
		h.Get("Accept") != "application/json" || h.Get("Content-Type") != "application/json" {
		t.Errorf("default headers %v", h)
	}
	if _, _, err := c.GetRevision(t.Context(), "acme", "web", GetRevisionOptions{Requester: "billing"}); err != nil {
		t.Fatal(err)
	}
	if h := last().Header; h.Get("Content-Type") != "" || h.Get(api.HeaderRequester) != "billing" {
		t.Errorf("GET headers %v: want no Content-Type and the requester", h)
	}
	opts := ResolveOptions{Requester: "search", Headers: http.Header{"X-Channel": {"beta"}, "Accept": {"text/plain"}}}
	if _, _, err := c.Resolve(t.Context(), "acme", "web", opts); err != nil {
		t.Fatal(err)
	}
	if h := last().Header; h.Get("X-Channel") != "beta" || h.Get(api.HeaderRequester) != "search" || h.Get("Accept") != "application/json" {
		t.Errorf("Resolve headers %v: want X-Channel, the requester and the client's own Accept", h)
	}
	if opts.Headers.Get(api.HeaderRequester) != "" {
		t.Errorf("Resolve changed the caller's headers: %v", opts.Headers)
	}
	// The client's own headers never come from the caller's: not a
	// credential put there for a route to match, not a content type.
	noUA, err := New(srv.URL, WithUserAgent(""))
	if err != nil {
		t.Fatal(err)
	}
	leaky := ResolveOptions{Headers: http.Header{"Authorization": {"Bearer secret"}, "Content-Type": {"text/plain"}, "User-Agent": {"mine"}, "X-Channel": {"beta"}}}
	if _, _, err := noUA.Resolve(t.Context(), "acme", "web", leaky); err != nil {
		t.Fatal(err)
	}
	if h := last().Header; h.Get("Authorization") != "" || h.Get("Content-Type") != "" || h.Get("User-Agent") == "mine" || h.Get("X-Channel") != "beta" {
		t.Errorf("Resolve headers %v: the caller's Authorization, Content-Type and User-Agent were sent", h)
	}

	c2, err := New(srv.URL, WithToken("s3cret"), WithUserAgent("billing/2"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c2.Health(t.Context()); err != nil {
		t.Fatal(err)
	}
	if h := last().Header; h.Get("Authorization") != "Bearer s3cret" || h.Get("User-Agent") != "billing/2" {
		t.Errorf("headers %v: want the token and user agent", h)
	}
}

func TestIndexHeader(t *testing.T) {
	tests := []struct {
		header  string
		want    Index
		wantErr bool
	}{
		{"42", 42, false},
		{"", 0, false},
		{"18446744073709551615", 18446744073709551615, false},
		{"-1", 0, true},
		{"forty-two", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.header, func(t *testing.T) {
			c, _ := newMemClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.header != "" {
					w.Header().Set(api.HeaderIndex, tt.header)
				}
				_, _ = io.WriteString(w, `{"values":[],"metadata":{"count":0,"limit":1000,"next_marker":null}}`)
			}))
			_, idx, err := c.ListInstances(t.Context(), "acme", "web", InstanceListOptions{})
			if (err != nil) != tt.wantErr || idx != tt.want {
				t.Errorf("index %d, error %v; want %d, error %v", idx, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestBadPathSegmentsAreRefused(t *testing.T) {
	c, last, _ := recordingServer(t, 200, `{}`)
	for _, seg := range []string{"", ".", ".."} {
		if _, _, err := c.GetInstance(t.Context(), "acme", "web", seg); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("GetInstance(%q) = %v, want ErrInvalidArgument", seg, err)
		}
		if err := c.DeregisterInstance(t.Context(), seg, "web", "i1"); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("DeregisterInstance(ns %q) = %v, want ErrInvalidArgument", seg, err)
		}
	}
	if _, err := escapePath("/services/{}", "a", "b"); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("a route with too few {} = %v, want ErrInvalidArgument", err)
	}
	if r := last(); r.Method != "" {
		t.Errorf("a request was sent: %+v", r)
	}
}

func TestDecodingAFailedAnswer(t *testing.T) {
	c, _, _ := recordingServer(t, 200, `{"token":`)
	_, err := c.Heartbeat(t.Context(), "acme", "web", "i1", "t")
	var ae *APIError
	if err == nil || errors.As(err, &ae) || !strings.Contains(err.Error(), "decoding") {
		t.Errorf("err = %v, want a decoding error", err)
	}
}

func TestTransportErrorsAreWrapped(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.URL
	srv.Close()
	c, err := New(addr)
	if err != nil {
		t.Fatal(err)
	}
	err = c.Health(t.Context())
	var ue *url.Error
	var ae *APIError
	if !errors.As(err, &ue) || errors.As(err, &ae) || !strings.HasPrefix(err.Error(), "client: ") {
		t.Errorf("err = %v, want a wrapped *url.Error", err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := c.Health(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("with a cancelled context: %v, want context.Canceled", err)
	}
}

func TestTimeouts(t *testing.T) {
	// hang answers after the duration in the request's
	// X-Test-Answer-After header, or never.
	hang := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, err := time.ParseDuration(r.Header.Get("X-Test-Answer-After"))
		if err != nil {
			<-r.Context().Done()
			return
		}
		select {
		case <-time.After(d):
			_, _ = io.WriteString(w, `{"events":[],"next":0}`)
		case <-r.Context().Done():
		}
	})
	tests := []struct {
		name        string
		timeout     time.Duration
		wait        time.Duration // 0: Status, else a long poll of Events
		answerAfter string        // empty: never
		wantErrAt   time.Duration // 0: no error
		deadline    time.Duration // the caller's context's deadline; 0: none
	}{
		{"an ordinary call is cut at the timeout", 2 * time.Second, 0, "", 2 * time.Second, 0},
		{"a long poll gets its wait on top", 2 * time.Second, 10 * time.Second, "9s", 0, 0},
		{"a long poll is cut at timeout+wait", 2 * time.Second, 10 * time.Second, "", 12 * time.Second, 0},
		{"no timeout waits for the answer", 0, 0, "5m", 0, 0},
		{"a sooner deadline of the caller cuts first", 2 * time.Second, 0, "", time.Second, time.Second},
		{"a later deadline of the caller leaves the timeout", 2 * time.Second, 0, "", 2 * time.Second, 5 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c, _ := newMemClient(t, hang, WithTimeout(tt.timeout))
				c.http.Transport = headerTransport{c.http.Transport, "X-Test-Answer-After", tt.answerAfter}
				ctx := t.Context()
				if tt.deadline > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tt.deadline)
					defer cancel()
				}
				start := time.Now()
				var err error
				if tt.wait == 0 {
					_, err = c.Status(ctx)
				} else {
					_, err = c.Events(ctx, EventQuery{Wait: tt.wait})
				}
				took := time.Since(start)
				if tt.wantErrAt == 0 {
					if err != nil {
						t.Fatalf("err = %v after %v", err, took)
					}
					return
				}
				if !errors.Is(err, context.DeadlineExceeded) || took != tt.wantErrAt {
					t.Errorf("err = %v after %v, want a deadline after %v", err, took, tt.wantErrAt)
				}
			})
		})
	}
}

// headerTransport adds a header to every request.
type headerTransport struct {
	next       http.RoundTripper
	key, value string
}

func (t headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(t.key, t.value)
	return t.next.RoundTrip(r)
}

func TestSelectRevisionReadsHowItChose(t *testing.T) {
	tests := []struct {
		name         string
		route, fb    string // the answer's X-Muster-Route and X-Muster-Fallback
		wantRoute    string
		wantFallback bool
	}{
		{"the default", "", "", "", false},
		{"a route", "beta", "", "beta", false},
		{"a route that fell back", "pin", "true", "pin", true},
		{"the hook", RouteHook, "", RouteHook, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newMemClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.route != "" {
					w.Header().Set(headerRoute, tt.route)
				}
				if tt.fb != "" {
					w.Header().Set(headerFallback, tt.fb)
				}
				w.Header().Set(api.HeaderIndex, "7")
				_, _ = io.WriteString(w, `{"namespace":"acme","name":"web","revision_tag":"1.0.0"}`)
			}))
			sel, idx, err := c.SelectRevision(t.Context(), "acme", "web", GetRevisionOptions{Requester: "billing"})
			if err != nil {
				t.Fatal(err)
			}
			if sel.Revision.RevisionTag != "1.0.0" || sel.Route != tt.wantRoute || sel.Fallback != tt.wantFallback || idx != 7 {
				t.Errorf("SelectRevision = %+v, index %d; want 1.0.0, route %q, fallback %t, index 7", sel, idx, tt.wantRoute, tt.wantFallback)
			}
		})
	}
}

// An answer with anything after its JSON value is refused, on the fast
// paths and on encoding/json's alike.
func TestAnswerWithTrailingDataIsRefused(t *testing.T) {
	for _, body := range []string{`{"node_id":"n"}{}`, `{"node_id":"n"} x`} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(body))
		}))
		c, err := New(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Status(t.Context()); err == nil || !strings.Contains(err.Error(), "decoding answer") {
			t.Errorf("Status of %q: %v, want a decoding error", body, err)
		}
		srv.Close()
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"node_id":"n"}` + "\n"))
	}))
	defer srv.Close()
	c, err := New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := c.Status(t.Context()); err != nil || st.NodeID != "n" {
		t.Fatalf("Status with a trailing newline: %+v, %v", st, err)
	}
}
