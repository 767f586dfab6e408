package registry

import (
	"cmp"
	"strings"

	"github.com/Masterminds/semver/v3"
)

// ParseVersion parses tag as a semantic version 2.0, allowing one leading 'v'.
// It reports false for any other tag ("latest", "1.2", "2024-01-05").
func ParseVersion(tag string) (*semver.Version, bool) {
	v, err := semver.StrictNewVersion(strings.TrimPrefix(tag, "v"))
	if err != nil {
		return nil, false
	}
	return v, true
}

// CompareTags orders two revision tags for listing, newest first: semantic
// versions by descending precedence, ties and non-semver tags broken by the tag
// itself; every semver tag sorts before every other tag. It returns a negative
// number when a sorts before b.
func CompareTags(a, b string) int {
	va, oka := ParseVersion(a)
	vb, okb := ParseVersion(b)
	switch {
	case oka && okb:
		if c := vb.Compare(va); c != 0 {
			return c
		}
	case oka:
		return -1
	case okb:
		return 1
	}
	return cmp.Compare(a, b)
}

// GreatestVersion returns the tag of highest semver precedence among tags, and
// false when none is a semantic version. Ties of precedence (1.0.0 and
// 1.0.0+build, or v1.0.0) go to the smallest tag string, so the choice is
// deterministic.
func GreatestVersion(tags []string) (string, bool) {
	var best string
	var bestV *semver.Version
	for _, t := range tags {
		v, ok := ParseVersion(t)
		if !ok {
			continue
		}
		if bestV == nil {
			best, bestV = t, v
			continue
		}
		if c := v.Compare(bestV); c > 0 || (c == 0 && t < best) {
			best, bestV = t, v
		}
	}
	return best, bestV != nil
}

// BecomesDefault is the default rule applied when a revision is registered:
// an explicit is_default wins; without one, the new tag becomes the default
// when it is a semantic version strictly greater than every other semver tag
// of the service (others excludes the new tag). A tag that is not semver never
// becomes the default by this rule.
func BecomesDefault(tag string, others []string, explicit *bool) bool {
	if explicit != nil {
		return *explicit
	}
	v, ok := ParseVersion(tag)
	if !ok {
		return false
	}
	for _, o := range others {
		if o == tag {
			continue
		}
		if ov, ok := ParseVersion(o); ok && ov.Compare(v) >= 0 {
			return false
		}
	}
	return true
}
