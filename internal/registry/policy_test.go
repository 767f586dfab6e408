package registry

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"testing"

	"github.com/muster-registry/muster/api"
)

var policyTags = []string{"1.2.9", "1.3.0", "2.0.0-beta.1", "2.0.0", "latest"}

func TestValidatePolicy(t *testing.T) {
	route := func(r api.PolicyRoute) *api.Policy { return &api.Policy{Routes: []api.PolicyRoute{r}} }
	cases := []struct {
		name  string
		in    *api.Policy
		field string // "" when valid
	}{
		{"empty policy", &api.Policy{}, ""},
		{"every rule", &api.Policy{DefaultRule: api.RuleLatestStable}, ""},
		{"unknown rule", &api.Policy{DefaultRule: "newest"}, "default_rule"},
		{"revision route", route(api.PolicyRoute{Name: "beta", Revision: "2.0.0-beta.1"}), ""},
		{"unknown revision", route(api.PolicyRoute{Name: "beta", Revision: "9.9.9"}), "routes[0].revision"},
		{"bad revision tag", route(api.PolicyRoute{Name: "beta", Revision: "-x"}), "routes[0].revision"},
		{"constraint", route(api.PolicyRoute{Name: "staff", Constraint: ">=2.0.0-0"}), ""},
		{"bad constraint", route(api.PolicyRoute{Name: "staff", Constraint: ">>2"}), "routes[0].constraint"},
		{"split", route(api.PolicyRoute{Name: "ab", Split: []api.SplitEntry{{Revision: "1.2.9", Weight: 90}, {Revision: "1.3.0", Weight: 10}}, Sticky: "requester"}), ""},
		{"negative weight", route(api.PolicyRoute{Name: "ab", Split: []api.SplitEntry{{Revision: "1.2.9", Weight: 110}, {Revision: "1.3.0", Weight: -10}}}), "routes[0].split[1].weight"},
		{"all-zero weights", route(api.PolicyRoute{Name: "ab", Split: []api.SplitEntry{{Revision: "1.2.9", Weight: 0}, {Revision: "1.3.0", Weight: 0}}}), "routes[0].split"},
		{"split twice the same", route(api.PolicyRoute{Name: "ab", Split: []api.SplitEntry{{Revision: "1.2.9", Weight: 1}, {Revision: "1.2.9", Weight: 1}}}), "routes[0].split[1].revision"},
		{"split unknown revision", route(api.PolicyRoute{Name: "ab", Split: []api.SplitEntry{{Revision: "1.2.9", Weight: 1}, {Revision: "3.0.0", Weight: 1}}}), "routes[0].split[1].revision"},
		{"two ways", route(api.PolicyRoute{Name: "x", Revision: "1.2.9", Constraint: "^1"}), "routes[0]"},
		{"no way", route(api.PolicyRoute{Name: "x"}), "routes[0]"},
		{"bad name", route(api.PolicyRoute{Name: "", Revision: "1.2.9"}), "routes[0].name"},
		{"reserved name", route(api.PolicyRoute{Name: "hook", Revision: "1.2.9"}), "routes[0].name"},
		{"sticky without split", route(api.PolicyRoute{Name: "x", Revision: "1.2.9", Sticky: "requester"}), "routes[0].sticky"},
		{"unknown sticky", route(api.PolicyRoute{Name: "x", Split: []api.SplitEntry{{Revision: "1.2.9", Weight: 1}}, Sticky: "ip"}), "routes[0].sticky"},
		{"bad header name", route(api.PolicyRoute{Name: "x", Revision: "1.2.9", Match: &api.PolicyMatch{Headers: map[string]string{"X Channel": "b"}}}), "routes[0].match.headers"},
		{"bad label key", route(api.PolicyRoute{Name: "x", Revision: "1.2.9", Match: &api.PolicyMatch{Labels: map[string]string{"": "b"}}}), "routes[0].match.labels"},
		{"empty requester glob", route(api.PolicyRoute{Name: "x", Revision: "1.2.9", Match: &api.PolicyMatch{Requesters: []string{""}}}), "routes[0].match.requesters[0]"},
		{"duplicate route names", &api.Policy{Routes: []api.PolicyRoute{{Name: "a", Revision: "1.2.9"}, {Name: "a", Revision: "1.3.0"}}}, "routes[1].name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidatePolicy(tc.in, policyTags)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("valid policy refused: %v", err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) || !errors.Is(err, ErrValidation) {
				t.Fatalf("err = %v, want a FieldError for %s", err, tc.field)
			}
			if fe.Field != tc.field {
				t.Errorf("field = %q, want %q (%v)", fe.Field, tc.field, err)
			}
		})
	}
}

func TestBecomesDefaultByRule(t *testing.T) {
	yes, no := true, false
	cases := []struct {
		rule, tag string
		others    []string
		explicit  *bool
		want      bool
	}{
		{api.RuleLatestSemver, "2.0.0-rc.1", []string{"1.9.0"}, nil, true},
		{api.RuleLatestStable, "2.0.0-rc.1", []string{"1.9.0"}, nil, false},
		{api.RuleLatestStable, "1.10.0", []string{"1.9.0", "2.0.0-rc.1"}, nil, true},
		{api.RuleLatestStable, "1.8.0", []string{"1.9.0"}, nil, false},
		{api.RuleManual, "9.0.0", []string{"1.0.0"}, nil, false},
		{api.RuleManual, "0.1.0", []string{"1.0.0"}, &yes, true},
		{api.RuleLatestSemver, "9.0.0", nil, &no, false},
		{"", "1.0.0", []string{"latest"}, nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.rule+"/"+tc.tag, func(t *testing.T) {
			if got := BecomesDefaultByRule(tc.rule, tc.tag, tc.others, tc.explicit); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestDefaultByRule(t *testing.T) {
	tags := []string{"1.2.9", "1.10.0", "2.0.0-rc.1", "latest"}
	cases := []struct {
		rule, current, want string
	}{
		{api.RuleLatestSemver, "1.2.9", "2.0.0-rc.1"},
		{api.RuleLatestStable, "2.0.0-rc.1", "1.10.0"},
		{api.RuleManual, "1.2.9", "1.2.9"},
		{api.RuleManual, "gone", ""},
	}
	for _, tc := range cases {
		if got := DefaultByRule(tc.rule, tags, tc.current); got != tc.want {
			t.Errorf("DefaultByRule(%s, current %s) = %q, want %q", tc.rule, tc.current, got, tc.want)
		}
	}
	if got := DefaultByRule(api.RuleLatestStable, []string{"1.0.0-rc.1", "main"}, ""); got != "" {
		t.Errorf("latest_stable with no stable version = %q, want none", got)
	}
}

func TestSelect(t *testing.T) {
	p := &api.Policy{Routes: []api.PolicyRoute{
		{Name: "beta", Match: &api.PolicyMatch{Headers: map[string]string{"X-Channel": "beta"}}, Revision: "2.0.0-beta.1"},
		{Name: "staff", Match: &api.PolicyMatch{Requesters: []string{"alice", "team-x/*"}}, Constraint: ">=2.0.0-0"},
		{Name: "eu", Match: &api.PolicyMatch{Labels: map[string]string{"region": "eu"}}, Constraint: "~1.3.0"},
		{Name: "none", Match: &api.PolicyMatch{Requesters: []string{"nobody"}}, Constraint: ">=5"},
	}}
	hdr := func(kv ...string) http.Header {
		h := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	cases := []struct {
		name      string
		req       Request
		tag, rout string
	}{
		{"header fits", Request{Headers: hdr("x-channel", "beta")}, "2.0.0-beta.1", "beta"},
		{"header other value", Request{Headers: hdr("X-Channel", "stable")}, "1.2.9", ""},
		{"requester exact", Request{Requester: "alice"}, "2.0.0", "staff"},
		{"requester glob", Request{Requester: "team-x/bob"}, "2.0.0", "staff"},
		{"requester glob miss", Request{Requester: "team-y/bob"}, "1.2.9", ""},
		{"label", Request{Labels: map[string]string{"region": "eu"}}, "1.3.0", "eu"},
		{"first fitting route wins", Request{Requester: "alice", Headers: hdr("X-Channel", "beta")}, "2.0.0-beta.1", "beta"},
		{"constraint matching nothing is passed over", Request{Requester: "nobody"}, "1.2.9", ""},
		{"nothing fits: default", Request{}, "1.2.9", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Select(p, policyTags, "1.2.9", tc.req, func(uint64) uint64 { t.Fatal("no split here"); return 0 })
			if got.Tag != tc.tag || got.Route != tc.rout {
				t.Errorf("Select = %+v, want %s via %q", got, tc.tag, tc.rout)
			}
		})
	}
}

func TestGlob(t *testing.T) {
	cases := []struct {
		p, s string
		want bool
	}{
		{"alice", "alice", true}, {"alice", "alicia", false}, {"team-x/*", "team-x/a/b", true},
		{"team-x/*", "team-x", false}, {"*", "", true}, {"*bob", "team/bob", true}, {"a*c*e", "abcde", true},
		{"a*c*e", "abcdf", false}, {"", "", true}, {"", "x", false},
	}
	for _, tc := range cases {
		if got := Glob(tc.p, tc.s); got != tc.want {
			t.Errorf("Glob(%q, %q) = %v, want %v", tc.p, tc.s, got, tc.want)
		}
	}
}

// A 90/10 sticky split over 10,000 requesters lands within ±2 points of its
// weights, and no requester moves while the weights stay the same.
func TestStickySplitShares(t *testing.T) {
	p := &api.Policy{Routes: []api.PolicyRoute{{Name: "ab", Split: []api.SplitEntry{{Revision: "1.2.9", Weight: 90}, {Revision: "1.3.0", Weight: 10}}, Sticky: api.StickyRequester}}}
	noRandom := func(uint64) uint64 { t.Fatal("sticky split must not draw at random"); return 0 }
	first := make(map[string]string, 10000)
	counts := map[string]int{}
	for i := 0; i < 10000; i++ {
		req := Request{Requester: fmt.Sprintf("user-%d@example.org", i)}
		got := Select(p, policyTags, "1.2.9", req, noRandom)
		first[req.Requester] = got.Tag
		counts[got.Tag]++
	}
	share := float64(counts["1.3.0"]) / 100
	if math.Abs(share-10) > 2 {
		t.Errorf("1.3.0 got %.2f%% of requesters, want 10±2", share)
	}
	for round := 0; round < 3; round++ {
		for req, tag := range first {
			if got := Select(p, policyTags, "1.2.9", Request{Requester: req}, noRandom).Tag; got != tag {
				t.Fatalf("requester %s moved from %s to %s", req, tag, got)
			}
		}
	}
}

// The sticky hash is documented so other implementations can agree: these
// values were computed outside Go (Python's hashlib), from the documented
// formula: first 8 bytes of SHA-256(route + "\n" + requester), big-endian,
// modulo the total weight.
func TestStickyBucketIsPinned(t *testing.T) {
	cases := []struct {
		route, requester string
		total, want      uint64
	}{
		{"ab", "alice", 100, 26},
		{"ab", "bob", 100, 83},
		{"ab", "bob", 7, 2},
		{"canary", "team-x/bob", 100, 34},
	}
	for _, tc := range cases {
		if got := StickyBucket(tc.route, tc.requester, tc.total); got != tc.want {
			t.Errorf("StickyBucket(%q, %q, %d) = %d, want %d", tc.route, tc.requester, tc.total, got, tc.want)
		}
	}
}

func TestUnstickySplitUsesTheDraw(t *testing.T) {
	p := &api.Policy{Routes: []api.PolicyRoute{{Name: "ab", Split: []api.SplitEntry{{Revision: "1.2.9", Weight: 90}, {Revision: "1.3.0", Weight: 10}}}}}
	for draw, want := range map[uint64]string{0: "1.2.9", 89: "1.2.9", 90: "1.3.0", 99: "1.3.0"} {
		got := Select(p, policyTags, "1.2.9", Request{Requester: "alice"}, func(n uint64) uint64 {
			if n != 100 {
				t.Fatalf("draw over %d, want 100", n)
			}
			return draw
		})
		if got.Tag != want {
			t.Errorf("draw %d → %s, want %s", draw, got.Tag, want)
		}
	}
}
