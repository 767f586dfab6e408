package api

// Default rules of a Policy: what decides the default revision when a
// registration does not say is_default.
const (
	// RuleLatestSemver: the greatest semantic version (the default).
	RuleLatestSemver = "latest_semver"
	// RuleLatestStable: the greatest semantic version without a prerelease;
	// prereleases never become the default by themselves.
	RuleLatestStable = "latest_stable"
	// RuleManual: only an explicit is_default moves the default.
	RuleManual = "manual"
)

// Policy is a service's revision selection policy
// (PUT/GET/DELETE /v1/services/{ns}/{name}/policy).
type Policy struct {
	// DefaultRule is latest_semver (when empty), latest_stable or manual.
	DefaultRule string `json:"default_rule"`
	// Routes are tried in order; the first whose Match fits picks the
	// revision. No fitting route: the default revision.
	Routes []PolicyRoute `json:"routes"`
	// FallbackToDefault: a picked revision with no passing instance falls
	// back to the default revision, and the answer says so.
	FallbackToDefault bool `json:"fallback_to_default"`
}

// RouteHook is the route name reported when an embedding program's
// selection hook picked the revision; no policy route may take it.
const RouteHook = "hook"

// PolicyRoute picks a revision for the requests its Match fits: exactly one
// of Revision, Constraint and Split is set.
type PolicyRoute struct {
	Name  string       `json:"name"`
	Match *PolicyMatch `json:"match,omitempty"`
	// Revision names one revision tag.
	Revision string `json:"revision,omitempty"`
	// Constraint picks the highest revision satisfying a semver constraint
	// such as ">=2.0.0-0" or "^1.2".
	Constraint string `json:"constraint,omitempty"`
	// Split shares requests between revisions by weight.
	Split []SplitEntry `json:"split,omitempty"`
	// Sticky "requester" gives a requester the same side of a Split every
	// time; empty picks per request.
	Sticky string `json:"sticky,omitempty"`
}

// PolicyMatch says which requests a route fits. Every non-empty part must
// match; a route without Match fits every request.
type PolicyMatch struct {
	// Requesters are requester names; '*' matches any run of characters.
	Requesters []string `json:"requesters,omitempty"`
	// Headers must all be present with exactly these values.
	Headers map[string]string `json:"headers,omitempty"`
	// Labels must all be passed as label.KEY=VALUE query parameters.
	Labels map[string]string `json:"labels,omitempty"`
}

// SplitEntry is one side of a weighted split.
type SplitEntry struct {
	Revision string `json:"revision"`
	Weight   int    `json:"weight"`
}

// Sticky values.
const (
	// StickyRequester: the same requester always gets the same side of a split.
	StickyRequester = "requester"
)

// Resolution is the answer of GET /v1/resolve/{ns}/{name}: where to send a
// request of this requester.
type Resolution struct {
	Revision Revision `json:"revision"`
	// Route names the policy route that picked the revision; empty when no
	// route fitted and the default was used.
	Route string `json:"route"`
	// Fallback is true when the picked revision had no passing instance and
	// the default revision was used instead (FallbackToDefault).
	Fallback bool `json:"fallback"`
	// Instances are the passing instances of Revision.
	Instances []Instance `json:"instances"`
	// URLMap is the namespace's URL map.
	URLMap map[string]string `json:"url_map"`
}

// ServiceUpdatePayload is the payload of service.update.
type ServiceUpdatePayload struct {
	// Change says what changed: "policy" or "definition".
	Change string `json:"change"`
	// Policy is the new policy (nil when it was deleted) for Change "policy".
	Policy *Policy `json:"policy,omitempty"`
}

// SelectionRequest is what a requester says about itself when it asks for a
// service's revision without naming one: its name (?requester= or the
// X-Muster-Requester header), its request headers, and its labels
// (label.KEY=VALUE query parameters). Policies match on it, and so may an
// embedding program's selection hook.
type SelectionRequest struct {
	Requester string
	Headers   map[string][]string
	Labels    map[string]string
}
