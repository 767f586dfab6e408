package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/muster-registry/muster/api"
	"github.com/muster-registry/muster/internal/servertest"
	"github.com/muster-registry/muster/server"
)

// call sends a JSON request and decodes a JSON answer into out (when not nil).
func call(t *testing.T, method, url string, body any, hdr http.Header, out any) *http.Response {
	t.Helper()
	var rd io.Reader
	if s, ok := body.(string); ok {
		rd = strings.NewReader(s)
	} else if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: answer %q: %v", method, url, raw, err)
		}
	}
	return resp
}

func must(t *testing.T, resp *http.Response, status int) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("%s %s = %d, want %d", resp.Request.Method, resp.Request.URL, resp.StatusCode, status)
	}
}

func register(t *testing.T, base, svc string, tags ...string) {
	t.Helper()
	for _, tag := range tags {
		must(t, call(t, "POST", base+"/v1/services/"+svc, api.RegisterRevisionRequest{RevisionTag: tag}, nil, nil), http.StatusCreated)
	}
}

func defaultTag(t *testing.T, base, svc string) string {
	t.Helper()
	var rev api.Revision
	resp := call(t, "GET", base+"/v1/services/"+svc, nil, nil, &rev)
	if resp.StatusCode == http.StatusNotFound {
		return ""
	}
	must(t, resp, http.StatusOK)
	return rev.RevisionTag
}

func eventTypes(t *testing.T, base string, after uint64) []string {
	t.Helper()
	var list api.EventList
	must(t, call(t, "GET", fmt.Sprintf("%s/v1/events?after=%d", base, after), nil, nil, &list), http.StatusOK)
	var out []string
	for _, e := range list.Events {
		out = append(out, e.Type)
	}
	return out
}

func index(resp *http.Response) uint64 {
	var n uint64
	fmt.Sscan(resp.Header.Get(api.HeaderIndex), &n)
	return n
}

func TestDefaultRules(t *testing.T) {
	base := servertest.Start(t, servertest.Options{}).URL
	register(t, base, "acme/web", "1.0.0", "1.1.0", "2.0.0-rc.1")
	if got := defaultTag(t, base, "acme/web"); got != "2.0.0-rc.1" {
		t.Fatalf("latest_semver default %q", got)
	}

	resp := call(t, "PUT", base+"/v1/services/acme/web/policy", `{"default_rule": "latest_stable"}`, nil, nil)
	must(t, resp, http.StatusOK)
	if got := defaultTag(t, base, "acme/web"); got != "1.1.0" {
		t.Fatalf("after latest_stable, default %q", got)
	}
	if got := eventTypes(t, base, index(resp)-2); strings.Join(got, ",") != "service.update,revision.default" {
		t.Fatalf("events of the rule change: %v", got)
	}
	register(t, base, "acme/web", "3.0.0-beta.1")
	if got := defaultTag(t, base, "acme/web"); got != "1.1.0" {
		t.Fatalf("latest_stable let a prerelease become default: %q", got)
	}

	must(t, call(t, "PUT", base+"/v1/services/acme/web/policy", `{"default_rule": "manual"}`, nil, nil), http.StatusOK)
	register(t, base, "acme/web", "4.0.0")
	if got := defaultTag(t, base, "acme/web"); got != "1.1.0" {
		t.Fatalf("manual moved the default to %q", got)
	}
	yes := true
	must(t, call(t, "POST", base+"/v1/services/acme/web", api.RegisterRevisionRequest{RevisionTag: "4.0.0", IsDefault: &yes}, nil, nil), http.StatusOK)
	if got := defaultTag(t, base, "acme/web"); got != "4.0.0" {
		t.Fatalf("manual: explicit is_default did not move the default: %q", got)
	}

	var p api.Policy
	must(t, call(t, "DELETE", base+"/v1/services/acme/web/policy", nil, nil, nil), http.StatusNoContent)
	must(t, call(t, "GET", base+"/v1/services/acme/web/policy", nil, nil, &p), http.StatusOK)
	if p.DefaultRule != api.RuleLatestSemver || len(p.Routes) != 0 {
		t.Fatalf("after DELETE the policy is %+v, want the default one", p)
	}
}

// routesPolicy is the example policy, with fallback switched by the caller.
func routesPolicy(fallback bool) string {
	return fmt.Sprintf(`{
  "default_rule": "latest_semver",
  "routes": [
    {"name": "beta", "match": {"headers": {"X-Channel": "beta"}}, "revision": "2.0.0-beta.1"},
    {"name": "staff", "match": {"requesters": ["alice", "team-x/*"]}, "constraint": ">=2.0.0-0"},
    {"name": "eu", "match": {"labels": {"region": "eu"}}, "constraint": "~1.3.0"},
    {"name": "ab", "split": [{"revision": "1.2.9", "weight": 90}, {"revision": "1.3.0", "weight": 10}], "sticky": "requester"}
  ],
  "fallback_to_default": %v
}`, fallback)
}

func TestRoutesPickRevisions(t *testing.T) {
	base := servertest.Start(t, servertest.Options{}).URL
	register(t, base, "acme/web", "1.2.9", "1.3.0", "2.0.0-beta.1", "2.0.0", "3.0.0-alpha.1")
	no := false
	must(t, call(t, "POST", base+"/v1/services/acme/web", api.RegisterRevisionRequest{RevisionTag: "1.2.9", IsDefault: &no}, nil, nil), http.StatusOK)
	must(t, call(t, "PUT", base+"/v1/services/acme/web/policy", routesPolicy(false), nil, nil), http.StatusOK)

	cases := []struct {
		name, query string
		hdr         http.Header
		tag, route  string
	}{
		{"header", "", http.Header{"X-Channel": {"beta"}}, "2.0.0-beta.1", "beta"},
		{"requester by query", "?requester=alice", nil, "3.0.0-alpha.1", "staff"},
		{"requester glob by header", "", http.Header{api.HeaderRequester: {"team-x/bob"}}, "3.0.0-alpha.1", "staff"},
		{"label", "?label.region=eu", nil, "1.3.0", "eu"},
		{"constraint query", "?revision=%5E1.2", nil, "1.3.0", ""},
		{"tilde constraint", "?revision=~1.2.0", nil, "1.2.9", ""},
		{"exact tag ignores the policy", "?revision_tag=1.2.9&requester=alice", nil, "1.2.9", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var rev api.Revision
			resp := call(t, "GET", base+"/v1/services/acme/web"+tc.query, nil, tc.hdr, &rev)
			must(t, resp, http.StatusOK)
			if rev.RevisionTag != tc.tag || resp.Header.Get("X-Muster-Route") != tc.route {
				t.Fatalf("got %s via %q, want %s via %q", rev.RevisionTag, resp.Header.Get("X-Muster-Route"), tc.tag, tc.route)
			}
		})
	}

	// The split route has no match: it fits everyone else, stickily.
	counts := map[string]int{}
	for i := 0; i < 400; i++ {
		req := fmt.Sprintf("user-%d", i)
		var first, again api.Revision
		call(t, "GET", base+"/v1/services/acme/web?requester="+req, nil, nil, &first)
		call(t, "GET", base+"/v1/services/acme/web?requester="+req, nil, nil, &again)
		if first.RevisionTag != again.RevisionTag {
			t.Fatalf("requester %s moved from %s to %s", req, first.RevisionTag, again.RevisionTag)
		}
		counts[first.RevisionTag]++
	}
	if counts["1.2.9"]+counts["1.3.0"] != 400 || counts["1.3.0"] < 16 || counts["1.3.0"] > 72 {
		t.Fatalf("split over 400 requesters: %v (want about 10%% on 1.3.0)", counts)
	}

	// No requester and no match: the split draws per request, so both sides appear.
	seen := map[string]bool{}
	for i := 0; i < 300 && len(seen) < 2; i++ {
		var rev api.Revision
		call(t, "GET", base+"/v1/services/acme/web", nil, nil, &rev)
		seen[rev.RevisionTag] = true
	}
	if !seen["1.2.9"] || !seen["1.3.0"] {
		t.Fatalf("per-request split over 300 requests saw only %v", seen)
	}

	// A route whose revision is named cannot lose it.
	var e api.Error
	must(t, call(t, "DELETE", base+"/v1/services/acme/web/revisions/2.0.0-beta.1", nil, nil, &e), http.StatusConflict)
	if e.Type != api.ErrConflict || !strings.Contains(e.Details, "beta") {
		t.Fatalf("conflict answer %+v", e)
	}
}

func TestFallbackToDefault(t *testing.T) {
	base := servertest.Start(t, servertest.Options{}).URL
	register(t, base, "acme/web", "1.2.9", "1.3.0", "2.0.0-beta.1", "2.0.0")
	must(t, call(t, "PUT", base+"/v1/services/acme/web/policy", routesPolicy(true), nil, nil), http.StatusOK)
	beta := http.Header{"X-Channel": {"beta"}}

	var res api.Resolution
	resp := call(t, "GET", base+"/v1/resolve/acme/web", nil, beta, &res)
	must(t, resp, http.StatusOK)
	if res.Revision.RevisionTag != "2.0.0" || !res.Fallback || res.Route != "beta" {
		t.Fatalf("without a passing beta instance: %+v", res)
	}
	var rev api.Revision
	resp = call(t, "GET", base+"/v1/services/acme/web", nil, beta, &rev)
	if rev.RevisionTag != "2.0.0" || resp.Header.Get("X-Muster-Fallback") != "true" {
		t.Fatalf("GET fell back to %s with header %q", rev.RevisionTag, resp.Header.Get("X-Muster-Fallback"))
	}

	// Once a beta instance is passing, the beta channel gets beta, with its instances and the URL map.
	reg := api.RegisterInstanceRequest{ID: "beta-1", RevisionTag: "2.0.0-beta.1", PublicURL: "https://beta.example.com", Endpoints: []string{"orders"}}
	must(t, call(t, "POST", base+"/v1/services/acme/web/instances", reg, nil, nil), http.StatusCreated)
	res = api.Resolution{}
	must(t, call(t, "GET", base+"/v1/resolve/acme/web", nil, beta, &res), http.StatusOK)
	if res.Revision.RevisionTag != "2.0.0-beta.1" || res.Fallback || len(res.Instances) != 1 || res.Instances[0].ID != "beta-1" ||
		res.URLMap["orders"] != "https://beta.example.com" {
		t.Fatalf("with a passing beta instance: %+v", res)
	}
	resp = call(t, "GET", base+"/v1/services/acme/web", nil, beta, &rev)
	if rev.RevisionTag != "2.0.0-beta.1" || resp.Header.Get("X-Muster-Fallback") != "" {
		t.Fatalf("GET answered %s, fallback %q", rev.RevisionTag, resp.Header.Get("X-Muster-Fallback"))
	}
}

func TestPolicyValidation(t *testing.T) {
	base := servertest.Start(t, servertest.Options{}).URL
	register(t, base, "acme/web", "1.2.9", "1.3.0")
	cases := []struct {
		name, body, field string
	}{
		{"unknown revision", `{"routes":[{"name":"x","revision":"9.9.9"}]}`, "routes[0].revision"},
		{"bad constraint", `{"routes":[{"name":"x","constraint":">>2"}]}`, "routes[0].constraint"},
		{"negative weight", `{"routes":[{"name":"x","split":[{"revision":"1.2.9","weight":-1},{"revision":"1.3.0","weight":5}]}]}`, "routes[0].split[0].weight"},
		{"all-zero weights", `{"routes":[{"name":"x","split":[{"revision":"1.2.9","weight":0}]}]}`, "routes[0].split"},
		{"unknown field", `{"routes":[{"name":"x","revision":"1.2.9","weigth":1}]}`, "weigth"},
		{"unknown rule", `{"default_rule":"newest"}`, "default_rule"},
		{"duplicate route", `{"routes":[{"name":"x","revision":"1.2.9"},{"name":"x","revision":"1.3.0"}]}`, "routes[1].name"},
	}
	before := index(call(t, "GET", base+"/v1/status", nil, nil, nil))
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var e api.Error
			must(t, call(t, "PUT", base+"/v1/services/acme/web/policy", tc.body, nil, &e), http.StatusBadRequest)
			if !strings.Contains(e.Details, tc.field) {
				t.Fatalf("details %q do not name %s", e.Details, tc.field)
			}
		})
	}
	if after := index(call(t, "GET", base+"/v1/status", nil, nil, nil)); after != before {
		t.Fatalf("refused policies wrote events (index %d → %d)", before, after)
	}
}

// An embedding program's hooks take precedence over the declarative policy.
func TestEmbeddingHooks(t *testing.T) {
	srv, err := server.New(server.Config{
		Dev: true, HTTPAddr: "127.0.0.1:0",
		SelectRevision: func(ns, name string, revs []api.Revision, req api.SelectionRequest) (string, bool) {
			switch req.Requester {
			case "vip":
				return revs[len(revs)-1].RevisionTag, true // the oldest semver
			case "ghost":
				return "9.9.9", true // not a revision of the service: ignored
			}
			return "", false
		},
		IsDefault: func(ns, name string, rev api.RegisterRevisionRequest, existing []api.Revision) (bool, bool) {
			if strings.HasSuffix(rev.RevisionTag, "-lts") {
				return true, true
			}
			return false, false
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	select {
	case <-srv.Ready():
	case <-time.After(30 * time.Second):
		t.Fatal("not ready")
	}
	base := "http://" + srv.Addr()
	register(t, base, "acme/web", "1.0.0", "2.0.0", "1.5.0-lts", "3.0.0")
	if got := defaultTag(t, base, "acme/web"); got != "3.0.0" {
		t.Fatalf("default %q, want 3.0.0 (the hook defers for non-lts tags)", got)
	}
	register(t, base, "acme/web", "0.9.0-lts")
	if got := defaultTag(t, base, "acme/web"); got != "0.9.0-lts" {
		t.Fatalf("IsDefault hook ignored: default %q", got)
	}
	// A re-post without is_default never moves the default, hook or not.
	yes := true
	must(t, call(t, "POST", base+"/v1/services/acme/web", api.RegisterRevisionRequest{RevisionTag: "3.0.0", IsDefault: &yes}, nil, nil), http.StatusOK)
	must(t, call(t, "POST", base+"/v1/services/acme/web", api.RegisterRevisionRequest{RevisionTag: "1.5.0-lts"}, nil, nil), http.StatusOK)
	if got := defaultTag(t, base, "acme/web"); got != "3.0.0" {
		t.Fatalf("a re-post moved the default to %q", got)
	}
	must(t, call(t, "PUT", base+"/v1/services/acme/web/policy", `{"routes":[{"name":"all","revision":"2.0.0"}]}`, nil, nil), http.StatusOK)
	var rev api.Revision
	resp := call(t, "GET", base+"/v1/services/acme/web?requester=vip", nil, nil, &rev)
	if rev.RevisionTag != "0.9.0-lts" || resp.Header.Get("X-Muster-Route") != "hook" {
		t.Fatalf("SelectRevision hook: got %s via %q", rev.RevisionTag, resp.Header.Get("X-Muster-Route"))
	}
	call(t, "GET", base+"/v1/services/acme/web?requester=other", nil, nil, &rev)
	if rev.RevisionTag != "2.0.0" {
		t.Fatalf("the hook deferred but the policy was not used: %s", rev.RevisionTag)
	}
	resp = call(t, "GET", base+"/v1/services/acme/web?requester=ghost", nil, nil, &rev)
	if rev.RevisionTag != "2.0.0" || resp.Header.Get(api.HeaderRoute) != "all" {
		t.Fatalf("a hook pick of an unknown revision was not replaced by the policy: %s via %q", rev.RevisionTag, resp.Header.Get(api.HeaderRoute))
	}
}
