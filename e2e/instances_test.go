package e2e

import (
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"testing"
	"time"
)

// TestInstanceLifecycle follows one id through register, conflicting
// register, take-over by PUT, heartbeats with rotating tokens, foreign and
// made-up tokens, PATCH and DELETE.
func TestInstanceLifecycle(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOpts{Dev: true})
	const ns, svc = "shop", "api"

	body := map[string]any{
		"id": "web-1", "revision_tag": "1.0.0", "address": "10.0.0.1", "port": 8080,
		"public_url": "https://api.example.com", "endpoints": []string{"users", "orders"},
		"tags": []string{"http", "eu"}, "metadata": map[string]string{"zone": "a"}, "heartbeat_timeout": 30,
	}
	r := s.do(t, "POST", svcPath(ns, svc)+"/instances", body).want(t, http.StatusCreated)
	if loc := r.Header.Get("Location"); loc != "/v1"+instPath(ns, svc, "web-1") {
		t.Errorf("Location %q, want %q", loc, "/v1"+instPath(ns, svc, "web-1"))
	}
	reg := decode[registration](t, r)
	want := instance{
		Namespace: ns, Service: svc, ID: "web-1", RevisionTag: "1.0.0", Address: "10.0.0.1", Port: 8080,
		PublicURL: "https://api.example.com", Endpoints: []string{"users", "orders"}, Tags: []string{"http", "eu"},
		Metadata: map[string]string{"zone": "a"}, HeartbeatTimeout: 30,
	}
	if got := reg.stored(); !reflect.DeepEqual(withoutTime(got), want) {
		t.Errorf("registered\n%+v\nwant\n%+v", got, want)
	}
	if reg.Token == "" || reg.Status != "passing" || reg.RegisteredAt.IsZero() || !reg.ExpiresAt.After(reg.RegisteredAt) {
		t.Errorf("registration %+v: want a token, status passing and expires_at after registered_at", reg)
	}
	r.index(t)

	// A second POST of a live id is refused and changes nothing.
	s.do(t, "POST", svcPath(ns, svc)+"/instances", map[string]any{"id": "web-1"}).
		wantError(t, http.StatusConflict, "instance_exists", "PUT")
	first := reg.Token

	// The first token works; each heartbeat spends its token.
	hb := s.beat(t, ns, svc, "web-1", first)
	if !hb.ExpiresAt.After(reg.ExpiresAt) && !hb.ExpiresAt.Equal(reg.ExpiresAt) {
		t.Errorf("heartbeat moved expires_at back: %v → %v", reg.ExpiresAt, hb.ExpiresAt)
	}
	s.heartbeat(t, ns, svc, "web-1", first).wantError(t, http.StatusConflict, "token_mismatch", "token")
	hb = s.beat(t, ns, svc, "web-1", hb.Token) // a mismatch changed nothing
	got := decode[instance](t, s.do(t, "GET", instPath(ns, svc, "web-1"), nil).want(t, http.StatusOK))
	if !got.ExpiresAt.Equal(hb.ExpiresAt) || got.Status != "passing" {
		t.Errorf("GET after heartbeat: expires_at %v status %s, want %v passing", got.ExpiresAt, got.Status, hb.ExpiresAt)
	}

	// PUT takes the id back (a restarted process): new token, old one dead.
	r = s.do(t, "PUT", instPath(ns, svc, "web-1"), map[string]any{"revision_tag": "1.1.0", "tags": []string{"http"}}).want(t, http.StatusOK)
	put := decode[registration](t, r)
	if put.Token == "" || put.Token == hb.Token || put.Token == first {
		t.Fatalf("PUT returned token %q; want a new one", put.Token)
	}
	if put.RevisionTag != "1.1.0" || !slices.Equal(put.Tags, []string{"http"}) || put.HeartbeatTimeout != 30 {
		t.Errorf("PUT answered %+v", put.instance)
	}
	s.heartbeat(t, ns, svc, "web-1", hb.Token).wantError(t, http.StatusConflict, "token_mismatch", "token")
	cur := s.beat(t, ns, svc, "web-1", put.Token).Token

	// PUT of an id that does not exist registers it: 201.
	other := decode[registration](t, s.do(t, "PUT", instPath(ns, svc, "web-2"), map[string]any{"id": "web-2"}).want(t, http.StatusCreated))

	// Tokens are bound to their instance; made-up tokens get nowhere.
	for _, c := range []struct{ name, id, token string }{
		{"A's token on B", "web-2", cur},
		{"B's token on A", "web-1", other.Token},
		{"made up", "web-1", "AAAAAAAAAAAAAAAAAAAAAA"},
		{"made up, odd length", "web-2", "x"},
	} {
		s.heartbeat(t, ns, svc, c.id, c.token).wantError(t, http.StatusConflict, "token_mismatch", "token")
	}
	cur = s.beat(t, ns, svc, "web-1", cur).Token
	s.beat(t, ns, svc, "web-2", other.Token)
	s.heartbeat(t, ns, svc, "nobody", cur).wantError(t, http.StatusNotFound, "not_found", "nobody")
	s.heartbeat(t, ns, "nosvc", "web-1", cur).wantError(t, http.StatusNotFound, "not_found", "web-1")

	// PATCH changes only the fields present; the token stays.
	r = s.do(t, "PATCH", instPath(ns, svc, "web-1"), map[string]any{
		"tags": []string{"http", "canary"}, "metadata": map[string]string{"zone": "b", "rack": "7"},
	}).want(t, http.StatusOK)
	patched := decode[instance](t, r)
	if !slices.Equal(patched.Tags, []string{"http", "canary"}) || !reflect.DeepEqual(patched.Metadata, map[string]string{"zone": "b", "rack": "7"}) ||
		patched.RevisionTag != "1.1.0" || patched.Status != "passing" {
		t.Errorf("PATCH answered %+v", patched)
	}
	if again := decode[instance](t, s.do(t, "GET", instPath(ns, svc, "web-1"), nil).want(t, http.StatusOK)); !reflect.DeepEqual(again.stored(), patched.stored()) {
		t.Errorf("GET after PATCH\n%+v\nwant\n%+v", again, patched)
	}
	r = s.do(t, "PATCH", instPath(ns, svc, "web-1"), map[string]any{"tags": []string{}, "heartbeat_timeout": 60}).want(t, http.StatusOK)
	if p := decode[instance](t, r); len(p.Tags) != 0 || p.Tags == nil || p.HeartbeatTimeout != 60 || p.Metadata["rack"] != "7" {
		t.Errorf("PATCH clearing tags: %+v", p)
	}
	cur = s.beat(t, ns, svc, "web-1", cur).Token
	s.do(t, "PATCH", instPath(ns, svc, "ghost"), map[string]any{"tags": []string{"x"}}).wantError(t, http.StatusNotFound, "not_found", "ghost")

	// DELETE: 204, then gone everywhere.
	s.do(t, "DELETE", instPath(ns, svc, "web-1"), nil).want(t, http.StatusNoContent)
	s.do(t, "GET", instPath(ns, svc, "web-1"), nil).wantError(t, http.StatusNotFound, "not_found", "web-1")
	s.do(t, "DELETE", instPath(ns, svc, "web-1"), nil).wantError(t, http.StatusNotFound, "not_found", "web-1")
	s.heartbeat(t, ns, svc, "web-1", cur).wantError(t, http.StatusNotFound, "not_found", "web-1")
	if ids := instanceIDs(s.instances(t, ns, svc, "")); !slices.Equal(ids, []string{"web-2"}) {
		t.Errorf("instances after DELETE: %v, want [web-2]", ids)
	}
	// The id is free again: a POST registers it anew, with a fresh token.
	again := s.register(t, ns, svc, map[string]any{"id": "web-1"})
	if again.Token == cur {
		t.Errorf("re-registration reused the old token")
	}

	// A POST without an id gets one made by the server.
	anon := s.register(t, ns, svc, map[string]any{})
	if anon.ID == "" {
		t.Errorf("POST without id: no id made")
	}
	s.beat(t, ns, svc, anon.ID, anon.Token)

	// The events tell the story in order.
	var types []string
	for _, e := range s.events(t, "namespace="+ns+"&service="+svc).Events {
		types = append(types, e.Type)
	}
	wantTypes := []string{"instance.join", "instance.update", "instance.join", "instance.update", "instance.update", "instance.remove", "instance.join", "instance.join"}
	if !slices.Equal(types, wantTypes) {
		t.Errorf("events %v\nwant   %v", types, wantTypes)
	}
}

// withoutTime drops registered_at too, for comparing with a literal.
func withoutTime(i instance) instance {
	i.RegisteredAt = time.Time{}
	return i
}

// TestInstanceListFilters checks the tag (all must match), revision_tag and
// status filters, alone and combined, and limit/marker paging.
func TestInstanceListFilters(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOpts{Dev: true})
	const ns, svc = "shop", "search"
	for _, in := range []struct {
		id, rev string
		tags    []string
	}{
		{"i1", "1.0.0", []string{"a", "b"}},
		{"i2", "1.0.0", []string{"a"}},
		{"i3", "2.0.0", []string{"b"}},
		{"i4", "2.0.0", []string{"a", "b", "c"}},
		{"i5", "", nil},
	} {
		s.register(t, ns, svc, map[string]any{"id": in.id, "revision_tag": in.rev, "tags": in.tags})
	}
	tests := []struct {
		query string
		want  []string
	}{
		{"", []string{"i1", "i2", "i3", "i4", "i5"}},
		{"tag=a", []string{"i1", "i2", "i4"}},
		{"tag=a&tag=b", []string{"i1", "i4"}},
		{"tag=b&tag=a", []string{"i1", "i4"}},
		{"tag=a&tag=b&tag=c", []string{"i4"}},
		{"tag=c&tag=zzz", []string{}},
		{"tag=zzz", []string{}},
		{"revision_tag=2.0.0", []string{"i3", "i4"}},
		{"revision_tag=2.0.0&tag=a", []string{"i4"}},
		{"revision_tag=1.0.0&tag=b", []string{"i1"}},
		{"revision_tag=9.9.9", []string{}},
		{"status=passing", []string{"i1", "i2", "i3", "i4", "i5"}},
		{"status=passing&tag=b", []string{"i1", "i3", "i4"}},
		{"status=critical", []string{}},
		{"limit=2", []string{"i1", "i2"}},
		{"tag=a&limit=2", []string{"i1", "i2"}},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			r := s.do(t, "GET", svcPath(ns, svc)+"/instances?"+tt.query, nil).want(t, http.StatusOK)
			r.index(t)
			page := decode[listPage[instance]](t, r)
			if got := instanceIDs(page.Values); !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
			if page.Values == nil || page.Metadata.Count != len(page.Values) {
				t.Errorf("values %v with metadata count %d", page.Values, page.Metadata.Count)
			}
		})
	}

	// Paging: 25 instances, limit 10 → 10, 10, 5, each page after the last.
	const many = "paged"
	var all []string
	for i := range 25 {
		id := fmt.Sprintf("p-%02d", 24-i) // registered in reverse order; listed by id
		s.register(t, ns, many, map[string]any{"id": id})
		all = append(all, id)
	}
	slices.Sort(all)
	var seen []string
	marker := ""
	for pageNo := 0; ; pageNo++ {
		q := "limit=10"
		if marker != "" {
			q += "&marker=" + marker
		}
		page := decode[listPage[instance]](t, s.do(t, "GET", svcPath(ns, many)+"/instances?"+q, nil).want(t, http.StatusOK))
		wantLen := []int{10, 10, 5}[pageNo]
		if len(page.Values) != wantLen || page.Metadata.Count != wantLen || page.Metadata.Limit != 10 {
			t.Fatalf("page %d: %d values, metadata %+v; want %d", pageNo, len(page.Values), page.Metadata, wantLen)
		}
		seen = append(seen, instanceIDs(page.Values)...)
		if page.Metadata.NextMarker == nil {
			if pageNo != 2 {
				t.Fatalf("paging ended after page %d", pageNo)
			}
			break
		}
		marker = *page.Metadata.NextMarker
	}
	if !slices.Equal(seen, all) {
		t.Errorf("pages gave %v\nwant %v", seen, all)
	}
	// Paging composes with a filter.
	page := decode[listPage[instance]](t, s.do(t, "GET", svcPath(ns, svc)+"/instances?tag=a&limit=2", nil).want(t, http.StatusOK))
	if page.Metadata.NextMarker == nil {
		t.Fatal("tag=a&limit=2: no next_marker with 3 matches")
	}
	rest := s.instances(t, ns, svc, "tag=a&limit=2&marker="+*page.Metadata.NextMarker)
	if got := instanceIDs(rest); !slices.Equal(got, []string{"i4"}) {
		t.Errorf("second page of tag=a: %v, want [i4]", got)
	}
}

// TestServiceList checks GET /v1/services with its namespace and tag filters.
func TestServiceList(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOpts{Dev: true})
	s.postRevision(t, "ns1", "svc-a", map[string]string{"revision_tag": "1.0.0"})
	s.register(t, "ns1", "svc-a", map[string]any{"id": "a1", "tags": []string{"db"}})
	s.register(t, "ns1", "svc-a", map[string]any{"id": "a2", "tags": []string{"web"}})
	s.postRevision(t, "ns1", "svc-b", map[string]string{"revision_tag": "latest"})
	s.register(t, "ns2", "svc-c", map[string]any{"id": "c1", "tags": []string{"db", "primary"}})

	tests := []struct {
		query string
		want  []string
	}{
		{"", []string{"ns1/svc-a", "ns1/svc-b", "ns2/svc-c"}},
		{"namespace=ns1", []string{"ns1/svc-a", "ns1/svc-b"}},
		{"namespace=ns2", []string{"ns2/svc-c"}},
		{"namespace=ns3", []string{}},
		{"tag=db", []string{"ns1/svc-a", "ns2/svc-c"}},
		{"tag=db&tag=primary", []string{"ns2/svc-c"}},
		{"tag=db&tag=web", []string{}}, // all tags must match one instance
		{"namespace=ns1&tag=db", []string{"ns1/svc-a"}},
		{"namespace=ns2&tag=web", []string{}},
		{"limit=1", []string{"ns1/svc-a"}},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			r := s.do(t, "GET", "/services?"+tt.query, nil).want(t, http.StatusOK)
			r.index(t)
			page := decode[listPage[serviceSummary]](t, r)
			got := ids(page.Values, func(v serviceSummary) string { return v.Namespace + "/" + v.Name })
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
	sums := decode[listPage[serviceSummary]](t, s.do(t, "GET", "/services?namespace=ns1", nil).want(t, http.StatusOK)).Values
	a, b := sums[0], sums[1]
	if a.DefaultRevision == nil || a.DefaultRevision.RevisionTag != "1.0.0" || a.Revisions != 1 || a.Instances != 2 || a.Passing != 2 ||
		!slices.Equal(a.Tags, []string{"db", "web"}) {
		t.Errorf("svc-a summary %+v", a)
	}
	if b.DefaultRevision != nil || b.Revisions != 1 || b.Instances != 0 {
		t.Errorf("svc-b summary %+v: a non-semver revision is no default", b)
	}
}

// TestURLMap checks GET /v1/url-map/{ns}: one URL per resource from the
// passing instances, conflicts resolved deterministically (default revision
// first, then the oldest registration) and reported.
func TestURLMap(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOpts{Dev: true})
	const ns = "web"
	s.postRevision(t, ns, "users", map[string]string{"revision_tag": "1.0.0"})
	s.postRevision(t, ns, "users", map[string]string{"revision_tag": "2.0.0"}) // the default
	// The old revision registered first; the default revision wins anyway.
	s.register(t, ns, "users", map[string]any{"id": "u-old", "revision_tag": "1.0.0", "endpoints": []string{"users"}, "public_url": "http://old.example"})
	s.register(t, ns, "users", map[string]any{"id": "u-new", "revision_tag": "2.0.0", "endpoints": []string{"users", "orders"}, "public_url": "http://new.example"})
	// No default revision in "cart": the oldest registration wins. z-first
	// sorts last by name, so only its age can make it win; registrations are
	// stamped to the millisecond, so the second waits for the next one.
	first := s.register(t, ns, "cart", map[string]any{"id": "z-first", "endpoints": []string{"cart"}, "public_url": "http://cart-1.example"})
	waitUntil(first.RegisteredAt.Add(2 * time.Millisecond))
	second := s.register(t, ns, "cart", map[string]any{"id": "a-second", "endpoints": []string{"cart"}, "public_url": "http://cart-2.example"})
	if !second.RegisteredAt.After(first.RegisteredAt) {
		t.Fatalf("registered_at %v then %v; want increasing", first.RegisteredAt, second.RegisteredAt)
	}
	// No public URL: not in the map. Another namespace: not in the map.
	s.register(t, ns, "cart", map[string]any{"id": "internal", "endpoints": []string{"cart", "admin"}})
	s.register(t, "elsewhere", "cart", map[string]any{"id": "x", "endpoints": []string{"cart", "elsewhere"}, "public_url": "http://elsewhere.example"})

	cartWinner, cartFrom := "http://cart-1.example", "web/cart/z-first"
	want := urlMap{
		URLMap: map[string]string{"users": "http://new.example", "orders": "http://new.example", "cart": cartWinner},
		Conflicts: []urlMapConflict{
			{Resource: "cart", Chosen: cartWinner, ChosenFrom: cartFrom, Candidates: []string{"http://cart-1.example", "http://cart-2.example"}},
			{Resource: "users", Chosen: "http://new.example", ChosenFrom: "web/users/u-new", Candidates: []string{"http://new.example", "http://old.example"}},
		},
	}
	var firstBody string
	for i := range 5 {
		r := s.do(t, "GET", "/url-map/"+ns, nil).want(t, http.StatusOK)
		r.index(t)
		if got := decode[urlMap](t, r); !reflect.DeepEqual(got, want) {
			t.Fatalf("url map\n%+v\nwant\n%+v", got, want)
		}
		if i == 0 {
			firstBody = string(r.Body)
		} else if string(r.Body) != firstBody {
			t.Errorf("url map answer changed between reads:\n%s\n%s", firstBody, r.Body)
		}
	}

	// Without the competitor, no conflict.
	s.do(t, "DELETE", instPath(ns, "users", "u-old"), nil).want(t, http.StatusNoContent)
	got := decode[urlMap](t, s.do(t, "GET", "/url-map/"+ns, nil).want(t, http.StatusOK))
	if len(got.Conflicts) != 1 || got.Conflicts[0].Resource != "cart" || got.URLMap["users"] != "http://new.example" {
		t.Errorf("after removing u-old: %+v", got)
	}
	// An empty namespace has an empty map, not null.
	empty := s.do(t, "GET", "/url-map/nobody", nil).want(t, http.StatusOK)
	if e := decode[map[string]any](t, empty); e["url_map"] == nil || e["conflicts"] == nil {
		t.Errorf("empty url map: %s", empty.Body)
	}
}
