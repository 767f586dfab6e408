package httpapi

import (
	"net/http"
	"strings"
)

// heartbeatPattern is the heartbeat's route, as registered on the mux.
const heartbeatPattern = "POST /v1/services/{ns}/{name}/instances/{id}/heartbeat"

// heartbeatRoute recognises a heartbeat without the mux, which is ~4 % of
// the server's CPU on the most frequent request. It answers only for a
// path the mux would route to heartbeatPattern with the same values: a
// POST whose path is already clean (no empty, "." or ".." segment, so the
// mux would not redirect it) and has no escaped form of its own (so each
// segment is its value). Anything else, ok false, goes to the mux.
// TestHeartbeatRouteAgreesWithMux holds it to the mux.
func heartbeatRoute(r *http.Request) (ns, name, id string, ok bool) {
	const pre, mid, post = "/v1/services/", "/instances/", "/heartbeat"
	p := r.URL.Path
	// The length first: "/v1/services/heartbeat" has both ends, sharing a slash.
	if r.Method != http.MethodPost || r.URL.RawPath != "" || len(p) < len(pre)+len(post) ||
		!strings.HasPrefix(p, pre) || !strings.HasSuffix(p, post) {
		return "", "", "", false
	}
	rest := p[len(pre) : len(p)-len(post)] // ns/name/instances/id
	ns, rest, _ = strings.Cut(rest, "/")
	name, rest, _ = strings.Cut(rest, "/")
	if !strings.HasPrefix("/"+rest, mid) {
		return "", "", "", false
	}
	id = rest[len(mid)-1:]
	if !routeSegment(ns) || !routeSegment(name) || !routeSegment(id) {
		return "", "", "", false
	}
	return ns, name, id, true
}

// routeSegment reports whether s is one whole, clean path segment.
func routeSegment(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.Contains(s, "/")
}
