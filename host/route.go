package host

import (
	"net/http"
	"net/url"
	"strings"
)

// pattern is a parsed route path: plain segments and {name} wildcards.
type pattern struct {
	segs []segment
}

type segment struct {
	lit  string
	wild string // the wildcard's name, or "" for a plain segment
}

func parsePattern(p string) pattern {
	var pt pattern
	for _, s := range strings.Split(strings.TrimPrefix(p, "/"), "/") {
		if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
			pt.segs = append(pt.segs, segment{wild: s[1 : len(s)-1]})
		} else {
			// Patterns may hold escapes (validated as URL path characters);
			// requests are compared unescaped.
			if u, err := url.PathUnescape(s); err == nil {
				s = u
			}
			pt.segs = append(pt.segs, segment{lit: s})
		}
	}
	return pt
}

// match matches the request's path segments (unescaped one by one, so an
// escaped '/' stays inside its segment); a wildcard matches one non-empty
// segment. It answers the wildcards' values.
func (p pattern) match(segs []string) ([][2]string, bool) {
	if len(segs) != len(p.segs) {
		return nil, false
	}
	var vals [][2]string
	for i, s := range p.segs {
		switch {
		case s.wild != "":
			if segs[i] == "" {
				return nil, false
			}
			vals = append(vals, [2]string{s.wild, segs[i]})
		case s.lit != segs[i]:
			return nil, false
		}
	}
	return vals, true
}

// compare orders two patterns of the same length by specificity: at the
// first segment where one is plain and the other a wildcard, the plain one
// wins. It answers > 0 when p is more specific.
func (p pattern) compare(q pattern) int {
	for i := range min(len(p.segs), len(q.segs)) {
		pw, qw := p.segs[i].wild != "", q.segs[i].wild != ""
		switch {
		case !pw && qw:
			return 1
		case pw && !qw:
			return -1
		}
	}
	return 0
}

// splitPath answers the unescaped segments of a request path.
func splitPath(r *http.Request) []string {
	raw := strings.TrimPrefix(r.URL.EscapedPath(), "/")
	segs := strings.Split(raw, "/")
	for i, s := range segs {
		if u, err := url.PathUnescape(s); err == nil {
			segs[i] = u
		}
	}
	return segs
}

// methodRank says how well a route's method fits the request's: 3 exact,
// 2 GET for HEAD (as net/http does), 1 ANY, 0 not at all.
func methodRank(route, req string) int {
	switch {
	case route == req:
		return 3
	case route == http.MethodGet && req == http.MethodHead:
		return 2
	case route == "ANY":
		return 1
	}
	return 0
}

// table is one immutable routing table; a change builds a new one. Routes
// are few (a definition allows 256 endpoints of 32 exposures), so a linear
// scan is fast enough and keeps the precedence rules in one loop.
type table struct {
	routes   []*exposure
	fallback *exposure
}

// route picks the route of r: among those whose path and method match, the
// most specific path, then the best method fit, then the first listed. It
// also answers the methods of routes whose path matched, for a 405.
func (t *table) route(r *http.Request) (*exposure, [][2]string, []string) {
	segs := splitPath(r)
	var best *exposure
	var bestVals [][2]string
	var allow []string
	for _, x := range t.routes {
		vals, ok := x.pat.match(segs)
		if !ok {
			continue
		}
		rank := methodRank(x.spec.Method, r.Method)
		if rank == 0 {
			allow = append(allow, x.spec.Method)
			continue
		}
		if best == nil {
			best, bestVals = x, vals
			continue
		}
		c := x.pat.compare(best.pat)
		if c > 0 || (c == 0 && rank > methodRank(best.spec.Method, r.Method)) {
			best, bestVals = x, vals
		}
	}
	return best, bestVals, allow
}
