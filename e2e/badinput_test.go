package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// TestBadInput sends malformed, out-of-range and misrouted requests. Every
// answer must have the documented status, type and error shape, and none may
// change the stored data.
func TestBadInput(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOpts{Dev: true})
	const ns, svc = "my-org", "my-service"
	rev := svcPath(ns, svc)
	inst := instPath(ns, svc, "web-1")
	s.postRevision(t, ns, svc, map[string]any{"revision_tag": "1.2.9", "is_default": true, "metadata": map[string]string{"k": "v"}})
	s.postRevision(t, ns, svc, map[string]any{"revision_tag": "1.0.0"})
	reg := s.register(t, ns, svc, map[string]any{"id": "web-1", "tags": []string{"a"}, "metadata": map[string]string{"m": "1"}, "heartbeat_timeout": 60})
	before := snapshotState(t, s, ns, svc)

	tags33 := make([]string, 33)
	for i := range tags33 {
		tags33[i] = fmt.Sprintf("t%d", i)
	}
	big := `{"revision_tag":"9.9.9","metadata":{"k":"` + strings.Repeat("x", 100<<10) + `"}}`
	label64 := strings.Repeat("a", 64)
	tag129 := strings.Repeat("1", 129)
	md65 := map[string]string{}
	for i := range 65 {
		md65[fmt.Sprintf("k%d", i)] = "v"
	}

	tests := []struct {
		name       string
		method     string
		path       string // under the server root
		body       any
		hdr        []string
		wantStatus int
		wantType   string
		detailsHas string
		wantAllow  string
	}{
		// Strict decoding.
		{"unknown field", "POST", "/v1" + rev, `{"revision_tag":"2.0.0","is_defualt":true}`, nil, 400, "validation_failed", "is_defualt", ""},
		{"unknown field on instance", "POST", "/v1" + rev + "/instances", `{"id":"x","heartbeat_timout":30}`, nil, 400, "validation_failed", "heartbeat_timout", ""},
		{"unknown field on heartbeat", "POST", "/v1" + inst + "/heartbeat", `{"token":"` + reg.Token + `","ttl":5}`, nil, 400, "validation_failed", "ttl", ""},
		{"trailing object", "POST", "/v1" + rev, `{"revision_tag":"2.0.0"} {}`, nil, 400, "invalid_json", "trailing", ""},
		{"trailing garbage", "POST", "/v1" + rev, `{"revision_tag":"2.0.0"}x`, nil, 400, "invalid_json", "trailing", ""},
		{"two heartbeats in one body", "POST", "/v1" + inst + "/heartbeat", `{"token":"` + reg.Token + `"}{"token":"x"}`, nil, 400, "invalid_json", "trailing", ""},
		{"empty body", "POST", "/v1" + rev, "", nil, 400, "invalid_json", "empty", ""},
		{"truncated JSON", "POST", "/v1" + rev, `{"revision_tag":`, nil, 400, "invalid_json", "", ""},
		{"syntax error", "POST", "/v1" + rev, `{revision_tag: "2.0.0"}`, nil, 400, "invalid_json", "syntax", ""},
		{"array body", "POST", "/v1" + rev, `["2.0.0"]`, nil, 400, "invalid_json", "object", ""},
		{"tag as number", "POST", "/v1" + rev, `{"revision_tag":2}`, nil, 400, "validation_failed", "revision_tag", ""},
		{"is_default as string", "POST", "/v1" + rev, `{"revision_tag":"2.0.0","is_default":"yes"}`, nil, 400, "validation_failed", "is_default", ""},
		{"metadata as list", "POST", "/v1" + rev, `{"revision_tag":"2.0.0","metadata":["a"]}`, nil, 400, "validation_failed", "metadata", ""},
		{"metadata value as number", "POST", "/v1" + rev, `{"revision_tag":"2.0.0","metadata":{"a":1}}`, nil, 400, "validation_failed", "metadata", ""},
		{"metadata value null", "POST", "/v1" + rev + "/instances", `{"id":"x","heartbeat_timeout":30,"metadata":{"a":null}}`, nil, 400, "validation_failed", "metadata.a", ""},
		{"null body on register", "POST", "/v1" + rev + "/instances", `null`, nil, 400, "invalid_json", "not null", ""},
		{"null body on patch", "PATCH", "/v1" + inst, ` null `, nil, 400, "invalid_json", "not null", ""},
		{"null body on heartbeat", "POST", "/v1" + inst + "/heartbeat", `null`, nil, 400, "invalid_json", "not null", ""},
		{"timeout as string", "POST", "/v1" + rev + "/instances", `{"heartbeat_timeout":"30"}`, nil, 400, "validation_failed", "heartbeat_timeout", ""},
		{"tags as string", "POST", "/v1" + rev + "/instances", `{"tags":"a"}`, nil, 400, "validation_failed", "tags", ""},
		{"port as string", "POST", "/v1" + rev + "/instances", `{"port":"80"}`, nil, 400, "validation_failed", "port", ""},
		{"token as number", "POST", "/v1" + inst + "/heartbeat", `{"token":1}`, nil, 400, "validation_failed", "token", ""},
		// Ranges.
		{"heartbeat_timeout 2", "POST", "/v1" + rev + "/instances", map[string]any{"heartbeat_timeout": 2}, nil, 400, "validation_failed", "heartbeat_timeout", ""},
		{"heartbeat_timeout 121", "POST", "/v1" + rev + "/instances", map[string]any{"heartbeat_timeout": 121}, nil, 400, "validation_failed", "heartbeat_timeout", ""},
		{"heartbeat_timeout 3.5", "POST", "/v1" + rev + "/instances", `{"heartbeat_timeout":3.5}`, nil, 400, "validation_failed", "heartbeat_timeout", ""},
		{"heartbeat_timeout 0", "POST", "/v1" + rev + "/instances", `{"heartbeat_timeout":0}`, nil, 400, "validation_failed", "heartbeat_timeout", ""},
		{"heartbeat_timeout -1", "POST", "/v1" + rev + "/instances", map[string]any{"heartbeat_timeout": -1}, nil, 400, "validation_failed", "heartbeat_timeout", ""},
		{"heartbeat_timeout huge", "POST", "/v1" + rev + "/instances", `{"heartbeat_timeout":1e30}`, nil, 400, "validation_failed", "heartbeat_timeout", ""},
		{"PUT heartbeat_timeout 121", "PUT", "/v1" + inst, map[string]any{"heartbeat_timeout": 121}, nil, 400, "validation_failed", "heartbeat_timeout", ""},
		{"PATCH heartbeat_timeout 2", "PATCH", "/v1" + inst, map[string]any{"heartbeat_timeout": 2}, nil, 400, "validation_failed", "heartbeat_timeout", ""},
		{"PATCH heartbeat_timeout 0", "PATCH", "/v1" + inst, map[string]any{"heartbeat_timeout": 0}, nil, 400, "validation_failed", "heartbeat_timeout", ""},
		{"port 70000", "POST", "/v1" + rev + "/instances", map[string]any{"port": 70000}, nil, 400, "validation_failed", "port", ""},
		{"33 tags", "POST", "/v1" + rev + "/instances", map[string]any{"tags": tags33}, nil, 400, "validation_failed", "tags", ""},
		{"PATCH 33 tags", "PATCH", "/v1" + inst, map[string]any{"tags": tags33}, nil, 400, "validation_failed", "tags", ""},
		{"empty tag", "POST", "/v1" + rev + "/instances", map[string]any{"tags": []string{""}}, nil, 400, "validation_failed", "tags", ""},
		{"65-char tag", "POST", "/v1" + rev + "/instances", map[string]any{"tags": []string{strings.Repeat("t", 65)}}, nil, 400, "validation_failed", "tags", ""},
		{"65 metadata pairs", "POST", "/v1" + rev + "/instances", map[string]any{"metadata": md65}, nil, 400, "validation_failed", "metadata", ""},
		{"revision metadata value too long", "POST", "/v1" + rev, map[string]any{"revision_tag": "2.0.0", "metadata": map[string]string{"k": strings.Repeat("v", 1025)}}, nil, 400, "validation_failed", "metadata", ""},
		{"public_url not http", "POST", "/v1" + rev + "/instances", map[string]any{"public_url": "ftp://x.example"}, nil, 400, "validation_failed", "public_url", ""},
		{"public_url relative", "PATCH", "/v1" + inst, map[string]any{"public_url": "/users"}, nil, 400, "validation_failed", "public_url", ""},
		{"endpoint with space", "POST", "/v1" + rev + "/instances", map[string]any{"endpoints": []string{"a b"}}, nil, 400, "validation_failed", "endpoints", ""},
		{"missing token", "POST", "/v1" + inst + "/heartbeat", `{}`, nil, 400, "validation_failed", "token", ""},
		{"PUT id differs from path", "PUT", "/v1" + inst, map[string]any{"id": "web-2"}, nil, 400, "validation_failed", "id", ""},
		// Names and tags.
		{"uppercase namespace", "POST", "/v1/services/My-Org/my-service", map[string]any{"revision_tag": "2.0.0"}, nil, 400, "validation_failed", "namespace", ""},
		{"uppercase service", "GET", "/v1/services/my-org/My-Service", nil, nil, 400, "validation_failed", "name", ""},
		{"64-char namespace", "POST", "/v1/services/" + label64 + "/svc", map[string]any{"revision_tag": "2.0.0"}, nil, 400, "validation_failed", "namespace", ""},
		{"64-char service", "POST", "/v1/services/my-org/" + label64, map[string]any{"revision_tag": "2.0.0"}, nil, 400, "validation_failed", "name", ""},
		{"namespace with leading dash", "POST", "/v1/services/-org/svc/instances", map[string]any{}, nil, 400, "validation_failed", "namespace", ""},
		{"service with underscore", "GET", "/v1/services/my-org/my_service/instances", nil, nil, 400, "validation_failed", "name", ""},
		{"bad instance id", "PUT", "/v1" + instPath(ns, svc, "-web"), map[string]any{}, nil, 400, "validation_failed", "id", ""},
		{"bad instance id in body", "POST", "/v1" + rev + "/instances", map[string]any{"id": "web/1"}, nil, 400, "validation_failed", "id", ""},
		{"empty revision tag", "POST", "/v1" + rev, map[string]any{"revision_tag": ""}, nil, 400, "validation_failed", "revision_tag", ""},
		{"missing revision tag", "POST", "/v1" + rev, map[string]any{"is_default": true}, nil, 400, "validation_failed", "revision_tag", ""},
		{"revision tag with leading dot", "POST", "/v1" + rev, map[string]any{"revision_tag": ".1.0"}, nil, 400, "validation_failed", "revision_tag", ""},
		{"revision tag with space", "POST", "/v1" + rev, map[string]any{"revision_tag": "1.0 beta"}, nil, 400, "validation_failed", "revision_tag", ""},
		{"129-char revision tag", "POST", "/v1" + rev, map[string]any{"revision_tag": tag129}, nil, 400, "validation_failed", "revision_tag", ""},
		{"bad revision tag in query", "GET", "/v1" + rev + "?revision_tag=%2Fetc", nil, nil, 400, "validation_failed", "revision_tag", ""},
		{"bad revision tag to delete", "DELETE", "/v1" + rev + "/revisions/-1", nil, nil, 400, "validation_failed", "revision_tag", ""},
		// Size.
		{"body over 64 KiB", "POST", "/v1" + rev, big, nil, 413, "request_too_large", "65536", ""},
		{"chunked body over 64 KiB", "POST", "/v1" + rev, io.MultiReader(strings.NewReader(big)), nil, 413, "request_too_large", "65536", ""},
		{"chunked instance over 64 KiB", "PUT", "/v1" + inst, io.MultiReader(strings.NewReader(`{"metadata":{"k":"` + strings.Repeat("x", 70<<10) + `"}}`)), nil, 413, "request_too_large", "", ""},
		// Routes and methods.
		{"unknown route", "GET", "/v1/nope", nil, nil, 404, "not_found", "/v1/nope", ""},
		{"unknown root route", "GET", "/nope", nil, nil, 404, "not_found", "/nope", ""},
		{"too deep", "GET", "/v1" + inst + "/heartbeat/more", nil, nil, 404, "not_found", "", ""},
		{"PUT on a service", "PUT", "/v1" + rev, map[string]any{"revision_tag": "2.0.0"}, nil, 405, "method_not_allowed", "PUT", "GET, HEAD, POST"},
		{"DELETE on a service", "DELETE", "/v1" + rev, nil, nil, 405, "method_not_allowed", "DELETE", "GET, HEAD, POST"},
		{"GET on heartbeat", "GET", "/v1" + inst + "/heartbeat", nil, nil, 405, "method_not_allowed", "GET", "POST"},
		{"POST on events", "POST", "/v1/events", `{}`, nil, 405, "method_not_allowed", "POST", "GET, HEAD"},
		{"DELETE on instances", "DELETE", "/v1" + rev + "/instances", nil, nil, 405, "method_not_allowed", "DELETE", "GET, HEAD, POST"},
		// Query parameters.
		{"limit=0", "GET", "/v1" + rev + "/instances?limit=0", nil, nil, 400, "bad_request", "limit", ""},
		{"limit=10001", "GET", "/v1" + rev + "/instances?limit=10001", nil, nil, 400, "bad_request", "limit", ""},
		{"limit=abc", "GET", "/v1" + rev + "/revisions?limit=abc", nil, nil, 400, "bad_request", "limit", ""},
		{"limit=-1 on services", "GET", "/v1/services?limit=-1", nil, nil, 400, "bad_request", "limit", ""},
		{"limit twice", "GET", "/v1/events?limit=1&limit=2", nil, nil, 400, "bad_request", "limit", ""},
		{"unknown param", "GET", "/v1" + rev + "/instances?bogus=1", nil, nil, 400, "bad_request", "bogus", ""},
		{"unknown param on a read", "GET", "/v1" + rev + "?tag=1.2.9", nil, nil, 400, "bad_request", "tag", ""},
		{"misspelt filter", "GET", "/v1/events?typ=instance.join", nil, nil, 400, "bad_request", "typ", ""},
		{"status=bogus", "GET", "/v1" + rev + "/instances?status=bogus", nil, nil, 400, "bad_request", "status", ""},
		{"type=bogus", "GET", "/v1/events?type=bogus", nil, nil, 400, "bad_request", "bogus", ""},
		{"wait=301", "GET", "/v1/events?wait=301", nil, nil, 400, "bad_request", "wait", ""},
		{"wait=1.5", "GET", "/v1/events?wait=1.5", nil, nil, 400, "bad_request", "wait", ""},
		{"after=-1", "GET", "/v1/events?after=-1", nil, nil, 400, "bad_request", "after", ""},
		{"bad namespace filter", "GET", "/v1/events?namespace=Bad", nil, nil, 400, "validation_failed", "namespace", ""},
		{"bad namespace on services", "GET", "/v1/services?namespace=Bad", nil, nil, 400, "validation_failed", "namespace", ""},
		{"bad marker", "GET", "/v1" + rev + "/instances?marker=%21%21", nil, nil, 400, "bad_request", "marker", ""},
		{"malformed query", "GET", "/v1/events?after=%zz", nil, nil, 400, "bad_request", "query", ""},
		{"bad url-map namespace", "GET", "/v1/url-map/Bad", nil, nil, 400, "validation_failed", "namespace", ""},
		// The caller's request id is echoed.
		{"own request id", "GET", "/v1/nope", nil, []string{"X-Request-Id", "trace-42"}, 404, "not_found", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := doURL(t, tt.method, s.Root+tt.path, tt.body, tt.hdr...)
			if tt.wantStatus < 400 {
				r.want(t, tt.wantStatus)
				return
			}
			e := r.wantError(t, tt.wantStatus, tt.wantType, tt.detailsHas)
			if tt.wantAllow != "" && r.Header.Get("Allow") != tt.wantAllow {
				t.Errorf("Allow %q, want %q", r.Header.Get("Allow"), tt.wantAllow)
			}
			if len(tt.hdr) == 2 && e.RequestID != tt.hdr[1] {
				t.Errorf("request_id %q, want the caller's %q", e.RequestID, tt.hdr[1])
			}
		})
	}

	// Nothing above changed what was stored, and the instance's token still works.
	after := snapshotState(t, s, ns, svc)
	if !reflect.DeepEqual(before, after) {
		t.Errorf("bad input changed the data:\nbefore %+v\nafter  %+v", before, after)
	}
	s.beat(t, ns, svc, "web-1", reg.Token)
	s.do(t, "GET", rev+"?revision_tag=9.9.9", nil).wantError(t, http.StatusNotFound, "not_found", "9.9.9")
}

// stateView is what a client can see of one service, without lease times.
type stateView struct {
	Revisions  []revision
	Default    revision
	Instances  []instance
	EventIndex uint64
	Events     string
	Services   string
}

func snapshotState(t *testing.T, s *server, ns, svc string) stateView {
	t.Helper()
	v := stateView{
		Revisions: s.revisions(t, ns, svc),
		Default:   s.defaultRevision(t, ns, svc),
	}
	for _, in := range s.instances(t, ns, svc, "") {
		v.Instances = append(v.Instances, in.stored())
	}
	list := s.events(t, "after=0")
	v.EventIndex = list.Next
	b, _ := json.Marshal(list.Events)
	v.Events = string(b)
	sums := decode[listPage[serviceSummary]](t, s.do(t, "GET", "/services", nil).want(t, http.StatusOK))
	b, _ = json.Marshal(sums.Values)
	v.Services = string(b)
	return v
}
