package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"testing"
)

// TestSeedRevisionRequests sends the requests of seeds 000 and 001 exactly as
// they are written (base URL http://HOST:PORT/v1) and checks the answers the
// seeds show.
func TestSeedRevisionRequests(t *testing.T) {
	t.Parallel()
	seedAnswer := map[string]any{"namespace": "my-org", "name": "my-service", "revision_tag": "1.2.9", "is_default": true}
	tests := []struct {
		name string
		body string
	}{
		{"000 with is_default", `{"revision_tag": "1.2.9", "is_default": true}`},
		{"001 without is_default", `{"revision_tag": "1.2.9"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, serverOpts{Dev: true})
			r := doURL(t, "POST", s.URL+"/services/my-org/my-service", tt.body).want(t, http.StatusCreated)
			checkSeedKeys(t, r, seedAnswer)
			if loc := r.Header.Get("Location"); loc == "" {
				t.Errorf("%s: no Location header", r)
			}
			for _, u := range []string{
				s.URL + "/services/my-org/my-service",
				s.URL + "/services/my-org/my-service" + "?revision_tag=1.2.9",
			} {
				r := doURL(t, "GET", u, nil).want(t, http.StatusOK)
				checkSeedKeys(t, r, seedAnswer)
				r.index(t)
			}
		})
	}
}

// checkSeedKeys requires every key of want in the reply's JSON object, with
// that value, plus the documented created_at and metadata.
func checkSeedKeys(t *testing.T, r reply, want map[string]any) {
	t.Helper()
	got := decode[map[string]any](t, r)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %q is %v, want %v", r, k, got[k], v)
		}
	}
	for _, k := range []string{"created_at", "metadata"} {
		if _, ok := got[k]; !ok {
			t.Errorf("%s: no %q", r, k)
		}
	}
}

// TestRevisionRules walks the default rule step by step: semver precedence,
// non-semver tags, explicit is_default, idempotent re-posts, the listing
// order, and deletion of the default.
func TestRevisionRules(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOpts{Dev: true})
	const ns, name = "acme", "billing"

	isDefault := func(v bool) *bool { return &v }
	steps := []struct {
		tag         string
		isDefault   *bool
		wantStatus  int
		wantDefault string // the service's default afterwards
	}{
		{"1.9.0", nil, http.StatusCreated, "1.9.0"},
		{"1.10.0", nil, http.StatusCreated, "1.10.0"},             // 1.10.0 > 1.9.0, not string order
		{"1.2.0", nil, http.StatusCreated, "1.10.0"},              // older: stays non-default
		{"2.0.0-rc.1", nil, http.StatusCreated, "2.0.0-rc.1"},     // a pre-release of a greater version
		{"2.0.0", nil, http.StatusCreated, "2.0.0"},               // 2.0.0 > 2.0.0-rc.1
		{"2.0.0-rc.2", nil, http.StatusCreated, "2.0.0"},          // pre-release below its release
		{"latest", nil, http.StatusCreated, "2.0.0"},              // not semver: stored, never default by rule
		{"1.2", nil, http.StatusCreated, "2.0.0"},                 // not semver either
		{"9.0.0", isDefault(false), http.StatusCreated, "2.0.0"},  // explicit false wins over the rule, and is remembered
		{"latest", isDefault(true), http.StatusOK, "latest"},      // explicit true on a re-post
		{"1.9.0", nil, http.StatusOK, "latest"},                   // idempotent re-post moves nothing
		{"v3.0.0", nil, http.StatusCreated, "v3.0.0"},             // greatest of the eligible (9.0.0 opted out); a leading v is semver
		{"1.2.0", isDefault(true), http.StatusOK, "1.2.0"},        // explicit true on an old version
		{"1.2.0", isDefault(false), http.StatusOK, "v3.0.0"},      // false on the default hands it to the rule's choice (not 9.0.0)
		{"10.0.0", nil, http.StatusCreated, "10.0.0"},             // the rule again
		{"v10.0.1", nil, http.StatusCreated, "v10.0.1"},           // 10.0.1 > 10.0.0
		{"10.0.1-alpha", nil, http.StatusCreated, "v10.0.1"},      // below its release
		{"10.0.1+build.7", nil, http.StatusCreated, "v10.0.1"},    // same precedence as v10.0.1: not strictly greater
		{"1.9.0", isDefault(true), http.StatusOK, "1.9.0"},        // back to an early one explicitly
		{"1.9.0", isDefault(true), http.StatusOK, "1.9.0"},        // and again: idempotent
		{"20.0.0", isDefault(false), http.StatusCreated, "1.9.0"}, // explicit false
	}
	created := map[string]revision{}
	for i, st := range steps {
		body := map[string]any{"revision_tag": st.tag}
		if st.isDefault != nil {
			body["is_default"] = *st.isDefault
		}
		before := s.status(t).EventIndex
		r := s.do(t, "POST", svcPath(ns, name), body)
		if r.Status != st.wantStatus {
			t.Fatalf("step %d: %s; want %d", i, r, st.wantStatus)
		}
		got := decode[revision](t, r)
		if got.RevisionTag != st.tag || got.Namespace != ns || got.Name != name {
			t.Fatalf("step %d: answered %+v for %s", i, got, st.tag)
		}
		if got.IsDefault != (st.wantDefault == st.tag) {
			t.Errorf("step %d (%s): is_default %v in the answer, want %v", i, st.tag, got.IsDefault, st.wantDefault == st.tag)
		}
		if prev, ok := created[st.tag]; ok {
			if !got.CreatedAt.Equal(prev.CreatedAt) {
				t.Errorf("step %d: re-post of %s changed created_at %v → %v", i, st.tag, prev.CreatedAt, got.CreatedAt)
			}
			// A re-post writes an event only when it moves the default.
			after := s.status(t).EventIndex
			moved := st.isDefault != nil && (st.wantDefault == st.tag) != prev.IsDefault
			if !moved && after != before {
				t.Errorf("step %d: idempotent re-post of %s wrote %d events", i, st.tag, after-before)
			}
		} else if st.wantStatus == http.StatusCreated {
			// The Location of a new revision reads it back, whatever its tag.
			loc := r.Header.Get("Location")
			if loc == "" {
				t.Errorf("step %d: 201 without Location", i)
			} else if lr := doURL(t, "GET", s.Root+loc, nil); lr.Status != http.StatusOK || decode[revision](t, lr).RevisionTag != st.tag {
				t.Errorf("step %d: following Location %q: %s", i, loc, lr)
			}
		}
		created[st.tag] = got
		if def := s.defaultRevision(t, ns, name); def.RevisionTag != st.wantDefault || !def.IsDefault {
			t.Fatalf("step %d (%s): default is %s (is_default %v), want %s", i, st.tag, def.RevisionTag, def.IsDefault, st.wantDefault)
		}
		// Every tag reads back with the right is_default.
		rv := decode[revision](t, s.do(t, "GET", svcPath(ns, name)+"?revision_tag="+url.QueryEscape(st.tag), nil).want(t, http.StatusOK))
		if rv.IsDefault != (st.wantDefault == st.tag) {
			t.Errorf("step %d: GET ?revision_tag=%s is_default %v", i, st.tag, rv.IsDefault)
		}
	}

	// Listing: newest semver first; non-semver tags after every semver tag.
	list := s.revisions(t, ns, name)
	// v10.0.1 and 10.0.1+build.7 have equal precedence: the tag string breaks the tie.
	wantOrder := []string{"20.0.0", "10.0.1+build.7", "v10.0.1", "10.0.1-alpha", "10.0.0", "9.0.0", "v3.0.0",
		"2.0.0", "2.0.0-rc.2", "2.0.0-rc.1", "1.10.0", "1.9.0", "1.2.0", "1.2", "latest"}
	if got := revisionTags(list); !slices.Equal(got, wantOrder) {
		t.Errorf("revisions listed as\n%v\nwant\n%v", got, wantOrder)
	}
	if n := countDefaults(list); n != 1 {
		t.Errorf("%d revisions are default, want 1", n)
	}

	// Deleting the default hands it to the greatest remaining semver that
	// was not registered with is_default false.
	deletes := []struct{ tag, wantDefault string }{
		{"1.9.0", "10.0.1+build.7"}, // not 20.0.0 (opted out); equal precedence with v10.0.1: the smaller tag string
		{"10.0.1+build.7", "v10.0.1"},
		{"2.0.0", "v10.0.1"}, // not the default: the default stays
		{"v10.0.1", "10.0.1-alpha"},
		{"20.0.0", "10.0.1-alpha"},
	}
	for _, d := range deletes {
		s.do(t, "DELETE", svcPath(ns, name)+"/revisions/"+d.tag, nil).want(t, http.StatusNoContent)
		if def := s.defaultRevision(t, ns, name); def.RevisionTag != d.wantDefault {
			t.Errorf("after deleting %s the default is %s, want %s", d.tag, def.RevisionTag, d.wantDefault)
		}
		s.do(t, "GET", svcPath(ns, name)+"?revision_tag="+url.QueryEscape(d.tag), nil).wantError(t, http.StatusNotFound, "not_found", d.tag)
	}

	// A service whose only revisions are not semver has no default.
	s.postRevision(t, ns, "nightly", map[string]string{"revision_tag": "2024-01-05"})
	s.postRevision(t, ns, "nightly", map[string]string{"revision_tag": "main"})
	s.do(t, "GET", svcPath(ns, "nightly"), nil).wantError(t, http.StatusNotFound, "not_found", "default")
	s.do(t, "GET", svcPath(ns, "nightly")+"?revision_tag=main", nil).want(t, http.StatusOK)
	// Deleting the last semver revision leaves no default either.
	s.postRevision(t, ns, "nightly", map[string]string{"revision_tag": "0.1.0"})
	if def := s.defaultRevision(t, ns, "nightly"); def.RevisionTag != "0.1.0" {
		t.Errorf("nightly default %s, want 0.1.0", def.RevisionTag)
	}
	s.do(t, "DELETE", svcPath(ns, "nightly")+"/revisions/0.1.0", nil).want(t, http.StatusNoContent)
	s.do(t, "GET", svcPath(ns, "nightly"), nil).wantError(t, http.StatusNotFound, "not_found", "default")

	// A revision's metadata is fixed at registration: the same again is
	// idempotent, other metadata is a conflict.
	md := map[string]any{"revision_tag": "1.0.0", "metadata": map[string]string{"commit": "abc"}}
	s.do(t, "POST", svcPath(ns, "meta"), md).want(t, http.StatusCreated)
	s.do(t, "POST", svcPath(ns, "meta"), md).want(t, http.StatusOK)
	s.do(t, "POST", svcPath(ns, "meta"), map[string]any{"revision_tag": "1.0.0"}).want(t, http.StatusOK)
	s.do(t, "POST", svcPath(ns, "meta"), map[string]any{"revision_tag": "1.0.0", "metadata": map[string]string{"commit": "def"}}).
		wantError(t, http.StatusConflict, "conflict", "metadata")
	if got := s.defaultRevision(t, ns, "meta"); got.Metadata["commit"] != "abc" {
		t.Errorf("metadata after a conflicting re-post: %v", got.Metadata)
	}

	// 404 shapes.
	notFound := []struct{ name, method, path, detail string }{
		{"unknown service", "GET", svcPath(ns, "nope"), "acme/nope"},
		{"unknown namespace", "GET", svcPath("nobody", name), "nobody/billing"},
		{"unknown tag", "GET", svcPath(ns, name) + "?revision_tag=4.0.4", "4.0.4"},
		{"delete unknown tag", "DELETE", svcPath(ns, name) + "/revisions/4.0.4", "4.0.4"},
		{"delete on unknown service", "DELETE", svcPath(ns, "nope") + "/revisions/1.0.0", "acme/nope"},
		{"delete twice", "DELETE", svcPath(ns, name) + "/revisions/1.9.0", "1.9.0"},
	}
	for _, c := range notFound {
		t.Run(c.name, func(t *testing.T) {
			r := s.do(t, c.method, c.path, nil)
			r.wantError(t, http.StatusNotFound, "not_found", c.detail)
			if c.method == "GET" {
				r.index(t) // reads carry the index, also when they find nothing
			}
		})
	}
	// The listing of an unknown service is an empty list, not an error.
	empty := decode[listPage[revision]](t, s.do(t, "GET", svcPath(ns, "nope")+"/revisions", nil).want(t, http.StatusOK))
	if len(empty.Values) != 0 || empty.Values == nil || empty.Metadata.Count != 0 {
		t.Errorf("revisions of an unknown service: %+v, want an empty list", empty)
	}
}

func countDefaults(revs []revision) int {
	n := 0
	for _, r := range revs {
		if r.IsDefault {
			n++
		}
	}
	return n
}

// TestConcurrentDefaultRace registers 50 revisions at once, some with
// is_default true, on three services at the same time; each service must end
// with exactly one default, the one that GET returns and that the last
// revision.default event names.
func TestConcurrentDefaultRace(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOpts{Dev: true})
	const ns = "race"
	services := []string{"alpha", "beta", "gamma"}

	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan string, 50*len(services))
	for _, svc := range services {
		for i := range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Majors and minors interleave so that arrival order and
				// precedence disagree.
				body := map[string]any{"revision_tag": fmt.Sprintf("%d.%d.0", i%7, i)}
				if i%5 == 0 {
					body["is_default"] = true
				}
				<-start
				r, err := send("POST", s.URL+svcPath(ns, svc), body)
				switch {
				case err != nil:
					errs <- err.Error()
				case r.Status != http.StatusCreated:
					errs <- r.String()
				}
			}()
		}
	}
	close(start)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("concurrent register: %s; want 201", e)
	}

	for _, svc := range services {
		list := s.revisions(t, ns, svc)
		if len(list) != 50 {
			t.Errorf("%s: %d revisions, want 50", svc, len(list))
		}
		var defaults []string
		for _, r := range list {
			if r.IsDefault {
				defaults = append(defaults, r.RevisionTag)
			}
		}
		if len(defaults) != 1 {
			t.Fatalf("%s: defaults %v, want exactly one", svc, defaults)
		}
		def := s.defaultRevision(t, ns, svc)
		if def.RevisionTag != defaults[0] {
			t.Errorf("%s: GET returns %s, the list marks %s", svc, def.RevisionTag, defaults[0])
		}
		evs := s.events(t, "namespace="+ns+"&service="+svc+"&type=revision.default&limit=10000").Events
		if len(evs) == 0 {
			t.Fatalf("%s: no revision.default events", svc)
		}
		var last struct {
			RevisionTag string `json:"revision_tag"`
		}
		if err := json.Unmarshal(evs[len(evs)-1].Payload, &last); err != nil {
			t.Fatal(err)
		}
		if last.RevisionTag != def.RevisionTag {
			t.Errorf("%s: the last revision.default event names %s, the default is %s", svc, last.RevisionTag, def.RevisionTag)
		}
	}
}
