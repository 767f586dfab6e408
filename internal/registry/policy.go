package registry

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"net/http"
	"regexp"
	"slices"

	"github.com/Masterminds/semver/v3"

	"github.com/muster-registry/muster/api"
)

// Limits of a policy.
const (
	MaxPolicyRoutes   = 64
	MaxSplitEntries   = 16
	MaxMatchEntries   = 64
	maxMatchValueLen  = 1024
	maxRequesterGlobs = 256
)

var (
	routeNameRe  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)
	headerNameRe = regexp.MustCompile(`^[A-Za-z0-9-]{1,128}$`)
	labelKeyRe   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)
)

// ValidatePolicy checks a policy against the service's revision tags: known
// rule, unique route names, exactly one way to pick per route, revisions that
// exist, constraints that parse, weights that are not negative and not all zero.
func ValidatePolicy(p *api.Policy, tags []string) error {
	switch p.DefaultRule {
	case "", api.RuleLatestSemver, api.RuleLatestStable, api.RuleManual:
	default:
		return Invalid("default_rule", "%q is not one of latest_semver, latest_stable, manual", p.DefaultRule)
	}
	if len(p.Routes) > MaxPolicyRoutes {
		return Invalid("routes", "%d routes is more than the limit of %d", len(p.Routes), MaxPolicyRoutes)
	}
	names := make(map[string]bool, len(p.Routes))
	for i := range p.Routes {
		if err := validateRoute(&p.Routes[i], fieldf("routes[%d]", i), tags); err != nil {
			return err
		}
		if names[p.Routes[i].Name] {
			return Invalid(fieldf("routes[%d].name", i), "%q is used by an earlier route", p.Routes[i].Name)
		}
		names[p.Routes[i].Name] = true
	}
	return nil
}

func fieldf(format string, args ...any) string { return fmt.Sprintf(format, args...) }

func validateRoute(r *api.PolicyRoute, f string, tags []string) error {
	if !routeNameRe.MatchString(r.Name) {
		return Invalid(f+".name", "%q must be 1-64 letters, digits or '_.-', starting with a letter or digit", r.Name)
	}
	if r.Name == api.RouteHook {
		return Invalid(f+".name", "%q is reserved for the embedding program's selection hook", r.Name)
	}
	ways := 0
	for _, set := range []bool{r.Revision != "", r.Constraint != "", len(r.Split) > 0} {
		if set {
			ways++
		}
	}
	if ways != 1 {
		return Invalid(f, "give exactly one of revision, constraint and split (got %d)", ways)
	}
	switch {
	case r.Revision != "":
		if err := revisionExists(r.Revision, f+".revision", tags); err != nil {
			return err
		}
	case r.Constraint != "":
		if _, err := semver.NewConstraint(r.Constraint); err != nil {
			return Invalid(f+".constraint", "%q is not a semver constraint: %v", r.Constraint, err)
		}
	default:
		if err := validateSplit(r.Split, f+".split", tags); err != nil {
			return err
		}
	}
	switch r.Sticky {
	case "":
	case api.StickyRequester:
		if len(r.Split) == 0 {
			return Invalid(f+".sticky", "applies to a split only")
		}
	default:
		return Invalid(f+".sticky", "%q is not \"requester\"", r.Sticky)
	}
	if r.Match != nil {
		return validateMatch(r.Match, f+".match")
	}
	return nil
}

func revisionExists(tag, field string, tags []string) error {
	if err := ValidateRevisionTag(tag); err != nil {
		return Invalid(field, "%s", err.(*FieldError).Reason)
	}
	if !slices.Contains(tags, tag) {
		return Invalid(field, "revision %q is not registered for this service", tag)
	}
	return nil
}

func validateSplit(split []api.SplitEntry, f string, tags []string) error {
	if len(split) > MaxSplitEntries {
		return Invalid(f, "%d entries is more than the limit of %d", len(split), MaxSplitEntries)
	}
	total := 0
	seen := map[string]bool{}
	for i, e := range split {
		ef := fieldf("%s[%d]", f, i)
		if err := revisionExists(e.Revision, ef+".revision", tags); err != nil {
			return err
		}
		if seen[e.Revision] {
			return Invalid(ef+".revision", "%q appears twice in the split", e.Revision)
		}
		seen[e.Revision] = true
		if e.Weight < 0 || e.Weight > 1_000_000 {
			return Invalid(ef+".weight", "%d must be from 0 to 1000000", e.Weight)
		}
		total += e.Weight
	}
	if total == 0 {
		return Invalid(f, "the weights add up to 0; at least one must be positive")
	}
	return nil
}

func validateMatch(m *api.PolicyMatch, f string) error {
	if len(m.Requesters) > MaxMatchEntries || len(m.Headers) > MaxMatchEntries || len(m.Labels) > MaxMatchEntries {
		return Invalid(f, "at most %d requesters, headers and labels each", MaxMatchEntries)
	}
	for i, g := range m.Requesters {
		if g == "" || len(g) > maxRequesterGlobs {
			return Invalid(fieldf("%s.requesters[%d]", f, i), "must be 1-%d characters", maxRequesterGlobs)
		}
	}
	for k, v := range m.Headers {
		if !headerNameRe.MatchString(k) {
			return Invalid(f+".headers", "%q is not a header name", k)
		}
		if len(v) > maxMatchValueLen {
			return Invalid(f+".headers", "the value of %q is longer than %d bytes", k, maxMatchValueLen)
		}
	}
	for k, v := range m.Labels {
		if !labelKeyRe.MatchString(k) {
			return Invalid(f+".labels", "%q must be 1-128 letters, digits or '_.-'", k)
		}
		if len(v) > maxMatchValueLen {
			return Invalid(f+".labels", "the value of %q is longer than %d bytes", k, maxMatchValueLen)
		}
	}
	return nil
}

// BecomesDefaultByRule is the default rule of a policy applied when a
// revision is registered: an explicit is_default wins; otherwise latest_semver
// is BecomesDefault, latest_stable the same among versions without a
// prerelease (a prerelease never becomes the default by itself), and manual
// never moves the default.
func BecomesDefaultByRule(rule, tag string, others []string, explicit *bool) bool {
	if explicit != nil {
		return *explicit
	}
	switch rule {
	case api.RuleManual:
		return false
	case api.RuleLatestStable:
		v, ok := ParseVersion(tag)
		if !ok || v.Prerelease() != "" {
			return false
		}
		return BecomesDefault(tag, stableOnly(others), nil)
	default:
		return BecomesDefault(tag, others, nil)
	}
}

// DefaultByRule is the default the rule chooses among tags when it has to
// choose afresh (the rule changed, or the default was deleted): the greatest
// semver for latest_semver, the greatest stable semver for latest_stable, and
// current for manual ("" when current is not among tags).
func DefaultByRule(rule string, tags []string, current string) string {
	switch rule {
	case api.RuleManual:
		if slices.Contains(tags, current) {
			return current
		}
		return ""
	case api.RuleLatestStable:
		best, _ := GreatestVersion(stableOnly(tags))
		return best
	default:
		best, _ := GreatestVersion(tags)
		return best
	}
}

func stableOnly(tags []string) []string {
	var out []string
	for _, t := range tags {
		if v, ok := ParseVersion(t); ok && v.Prerelease() == "" {
			out = append(out, t)
		}
	}
	return out
}

// Request is what a policy's routes match on.
type Request struct {
	Requester string
	Headers   http.Header
	Labels    map[string]string
}

// Selection is the revision a policy picked and the route that picked it
// (Route is empty when no route fitted: Tag is then the default).
type Selection struct {
	Tag   string
	Route string
}

// Select tries the policy's routes in order and returns the first pick.
// A route whose constraint no revision satisfies is passed over. rnd(n)
// returns a uniform number in [0, n) for splits that are not sticky. When no
// route picks, the answer is the default revision.
func Select(p *api.Policy, tags []string, defaultTag string, req Request, rnd func(n uint64) uint64) Selection {
	if p != nil {
		for i := range p.Routes {
			r := &p.Routes[i]
			if !fits(r.Match, req) {
				continue
			}
			if tag := pick(r, tags, req, rnd); tag != "" {
				return Selection{Tag: tag, Route: r.Name}
			}
		}
	}
	return Selection{Tag: defaultTag}
}

func pick(r *api.PolicyRoute, tags []string, req Request, rnd func(uint64) uint64) string {
	switch {
	case r.Revision != "":
		if slices.Contains(tags, r.Revision) {
			return r.Revision
		}
		return ""
	case r.Constraint != "":
		return HighestSatisfying(r.Constraint, tags)
	default:
		var total uint64
		for _, e := range r.Split {
			total += uint64(e.Weight)
		}
		var n uint64
		if r.Sticky == api.StickyRequester && req.Requester != "" {
			n = StickyBucket(r.Name, req.Requester, total)
		} else {
			n = rnd(total)
		}
		for _, e := range r.Split {
			if n < uint64(e.Weight) {
				return e.Revision
			}
			n -= uint64(e.Weight)
		}
		return ""
	}
}

// StickyBucket is the documented hash that keeps a requester on one side of
// a split: the first 8 bytes, big-endian, of SHA-256(route name + "\n" +
// requester), modulo the total weight. The split's entries then take the
// buckets in order: [0, w1) to the first, [w1, w1+w2) to the second, and so on.
func StickyBucket(route, requester string, total uint64) uint64 {
	sum := sha256.Sum256([]byte(route + "\n" + requester))
	return binary.BigEndian.Uint64(sum[:8]) % total
}

// HighestSatisfying returns the tag of highest precedence among tags that
// satisfies the semver constraint, or "" (also for a constraint that does not parse).
func HighestSatisfying(constraint string, tags []string) string {
	c, err := semver.NewConstraint(constraint)
	if err != nil {
		return ""
	}
	var ok []string
	for _, t := range tags {
		if v, isV := ParseVersion(t); isV && c.Check(v) {
			ok = append(ok, t)
		}
	}
	best, _ := GreatestVersion(ok)
	return best
}

func fits(m *api.PolicyMatch, req Request) bool {
	if m == nil {
		return true
	}
	if len(m.Requesters) > 0 && !slices.ContainsFunc(m.Requesters, func(g string) bool { return Glob(g, req.Requester) }) {
		return false
	}
	for k, v := range m.Headers {
		if req.Headers.Get(k) != v || len(req.Headers.Values(k)) == 0 {
			return false
		}
	}
	for k, v := range m.Labels {
		if got, ok := req.Labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// Glob reports whether s matches pattern, where '*' matches any run of
// characters (including '/') and every other character matches itself.
func Glob(pattern, s string) bool {
	// Iterative matcher with backtracking to the last star.
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case p < len(pattern) && pattern[p] == s[i]:
			p++
			i++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// PolicyReferences returns the names of p's routes that name tag as a
// revision or in a split (constraints name no revision).
func PolicyReferences(p *api.Policy, tag string) []string {
	if p == nil {
		return nil
	}
	var out []string
	for _, r := range p.Routes {
		if r.Revision == tag || slices.ContainsFunc(r.Split, func(e api.SplitEntry) bool { return e.Revision == tag }) {
			out = append(out, r.Name)
		}
	}
	return out
}

// ValidConstraint reports whether s parses as a semver constraint.
func ValidConstraint(s string) bool {
	_, err := semver.NewConstraint(s)
	return err == nil
}
