package registry

import (
	"cmp"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"github.com/Masterminds/semver/v3"
	"github.com/robfig/cron/v3"

	"github.com/muster-registry/muster/api"
)

// Limits of a definition.
const (
	MaxDefinitionEndpoints = 256
	MaxEndpointBackends    = 64
	MaxEndpointExposures   = 32
	MaxEndpointPermissions = 64
)

var (
	endpointNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)
	topicRe        = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.>*-]{0,254}$`)
	permissionRe   = regexp.MustCompile(`^[A-Za-z0-9_.:*-]{1,128}$`)
	pathSegmentRe  = regexp.MustCompile(`^([A-Za-z0-9._~!$&'()*+,;=:@%-]*|\{[A-Za-z_][A-Za-z0-9_]*\})$`)
	httpMethods    = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "ANY"}
	cronParser     = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)
)

// Backend is a parsed backend reference "ns/name[@constraint]".
type Backend struct {
	Namespace, Name string
	// Constraint is the semver constraint on the revision ("" for any).
	Constraint string
	constraint *semver.Constraints
}

// Service returns "ns/name".
func (b Backend) Service() string { return b.Namespace + "/" + b.Name }

// Accepts reports whether an instance of revision tag satisfies the
// backend's constraint. Without a constraint every instance does; with one,
// only instances of a semver revision that satisfies it.
func (b Backend) Accepts(tag string) bool {
	if b.constraint == nil {
		return true
	}
	v, ok := ParseVersion(tag)
	return ok && b.constraint.Check(v)
}

// ParseBackend parses "ns/name" or "ns/name@constraint".
func ParseBackend(ref string) (Backend, error) {
	svc, constraint, hasC := strings.Cut(ref, "@")
	ns, name, ok := strings.Cut(svc, "/")
	if !ok {
		return Backend{}, fmt.Errorf("%q is not a service reference: write NAMESPACE/NAME[@CONSTRAINT]", ref)
	}
	if err := ValidateService(ns, name); err != nil {
		return Backend{}, fmt.Errorf("%q: %v", ref, err.(*FieldError).Reason)
	}
	b := Backend{Namespace: ns, Name: name}
	if hasC {
		c, err := semver.NewConstraint(constraint)
		if err != nil || constraint == "" {
			return Backend{}, fmt.Errorf("%q: %q is not a semver constraint", ref, constraint)
		}
		b.Constraint, b.constraint = constraint, c
	}
	return b, nil
}

// ValidateDefinition checks a service definition: unique endpoint names,
// backend references that parse, known exposure types with their fields
// (methods or ANY, paths, topics, cron specs), at most one fallback.
func ValidateDefinition(d *api.Definition) error {
	if len(d.Endpoints) > MaxDefinitionEndpoints {
		return Invalid("endpoints", "%d endpoints is more than the limit of %d", len(d.Endpoints), MaxDefinitionEndpoints)
	}
	names := map[string]bool{}
	fallbacks := 0
	routes := map[string]string{} // "METHOD path" → endpoint
	for i, ep := range d.Endpoints {
		f := fmt.Sprintf("endpoints[%d]", i)
		if !endpointNameRe.MatchString(ep.Name) {
			return Invalid(f+".name", "%q must be 1-128 letters, digits or '_.-', starting with a letter or digit", ep.Name)
		}
		if names[ep.Name] {
			return Invalid(f+".name", "%q is used by an earlier endpoint", ep.Name)
		}
		names[ep.Name] = true
		if len(ep.Backends) > MaxEndpointBackends || len(ep.Exposures) > MaxEndpointExposures || len(ep.Permissions) > MaxEndpointPermissions {
			return Invalid(f, "at most %d backends, %d exposures and %d permissions", MaxEndpointBackends, MaxEndpointExposures, MaxEndpointPermissions)
		}
		seen := map[string]bool{}
		for j, ref := range ep.Backends {
			if _, err := ParseBackend(ref); err != nil {
				return Invalid(fmt.Sprintf("%s.backends[%d]", f, j), "%v", err)
			}
			if seen[ref] {
				return Invalid(fmt.Sprintf("%s.backends[%d]", f, j), "%q is listed twice", ref)
			}
			seen[ref] = true
		}
		for j, p := range ep.Permissions {
			if !permissionRe.MatchString(p) {
				return Invalid(fmt.Sprintf("%s.permissions[%d]", f, j), "%q must be 1-128 letters, digits or '_.:*-'", p)
			}
		}
		for j, x := range ep.Exposures {
			xf := fmt.Sprintf("%s.exposures[%d]", f, j)
			if err := validateExposure(x, xf); err != nil {
				return err
			}
			switch x.Type {
			case api.ExposureHTTPFallback:
				if fallbacks++; fallbacks > 1 {
					return Invalid(xf+".type", "only one http-fallback is allowed in a definition")
				}
			case api.ExposureHTTP:
				key := x.Method + " " + x.Path
				if other, dup := routes[key]; dup {
					return Invalid(xf, "%s %s is already exposed by endpoint %q", x.Method, x.Path, other)
				}
				routes[key] = ep.Name
			}
		}
	}
	return nil
}

func validateExposure(x api.Exposure, f string) error {
	only := func(fields ...string) error {
		set := map[string]bool{"method": x.Method != "", "path": x.Path != "", "topic": x.Topic != "", "schedule": x.Schedule != ""}
		for name, isSet := range set {
			if isSet && !slices.Contains(fields, name) {
				return Invalid(f+"."+name, "does not apply to an exposure of type %q", x.Type)
			}
		}
		return nil
	}
	switch x.Type {
	case api.ExposureHTTP:
		if !slices.Contains(httpMethods, x.Method) {
			return Invalid(f+".method", "%q is not one of %s", x.Method, strings.Join(httpMethods, ", "))
		}
		if err := validatePath(x.Path); err != nil {
			return Invalid(f+".path", "%v", err)
		}
		return only("method", "path")
	case api.ExposureHTTPFallback:
		return only()
	case api.ExposureTopic:
		if !topicRe.MatchString(x.Topic) {
			return Invalid(f+".topic", "%q must be 1-255 letters, digits or '_.>*-'", x.Topic)
		}
		return only("topic")
	case api.ExposureCron:
		if _, err := cronParser.Parse(x.Schedule); err != nil {
			return Invalid(f+".schedule", "%q is not a cron spec (5 fields or @every/@daily…): %v", x.Schedule, err)
		}
		return only("schedule")
	default:
		return Invalid(f+".type", "%q is not one of http, http-fallback, topic, cron", x.Type)
	}
}

// validatePath checks an HTTP route pattern: absolute, segments of URL path
// characters or a whole-segment {name} wildcard, no wildcard twice.
func validatePath(p string) error {
	if !strings.HasPrefix(p, "/") || len(p) > 1024 {
		return fmt.Errorf("%q must start with '/' and be at most 1024 characters", p)
	}
	seen := map[string]bool{}
	for _, seg := range strings.Split(p[1:], "/") {
		if !pathSegmentRe.MatchString(seg) {
			return fmt.Errorf("segment %q of %q is neither plain text nor a {name} wildcard", seg, p)
		}
		if strings.HasPrefix(seg, "{") {
			if seen[seg] {
				return fmt.Errorf("wildcard %s appears twice in %q", seg, p)
			}
			seen[seg] = true
		}
	}
	return nil
}

// DiffDefinitions names the endpoints added, removed and changed from old to
// new (either may be nil), each list sorted.
func DiffDefinitions(old, new *api.Definition) api.DefinitionDiff {
	d := api.DefinitionDiff{Change: "definition", Added: []string{}, Removed: []string{}, Changed: []string{}}
	byName := func(def *api.Definition) map[string]api.Endpoint {
		m := map[string]api.Endpoint{}
		if def != nil {
			for _, ep := range def.Endpoints {
				m[ep.Name] = ep
			}
		}
		return m
	}
	o, n := byName(old), byName(new)
	for name, ep := range n {
		prev, ok := o[name]
		switch {
		case !ok:
			d.Added = append(d.Added, name)
		case !reflect.DeepEqual(normalEndpoint(prev), normalEndpoint(ep)):
			d.Changed = append(d.Changed, name)
		}
	}
	for name := range o {
		if _, ok := n[name]; !ok {
			d.Removed = append(d.Removed, name)
		}
	}
	slices.Sort(d.Added)
	slices.Sort(d.Removed)
	slices.Sort(d.Changed)
	return d
}

// normalEndpoint treats nil and empty lists alike, for comparison.
func normalEndpoint(ep api.Endpoint) api.Endpoint {
	if len(ep.Backends) == 0 {
		ep.Backends = nil
	}
	if len(ep.Exposures) == 0 {
		ep.Exposures = nil
	}
	if len(ep.Permissions) == 0 {
		ep.Permissions = nil
	}
	return ep
}

// BuildGraph returns the dependency graph of services: edges from each
// endpoint to each of its backends, a startup order in which every backend
// comes before its dependents (services in a cycle are placed together, in
// name order), and the cycles (strongly connected components of more than
// one service, or a service that needs itself), each sorted, all sorted.
func BuildGraph(defs map[string]*api.Definition, known []string) api.Graph {
	g := api.Graph{Nodes: []string{}, Edges: []api.GraphEdge{}, StartupOrder: []string{}, Cycles: [][]string{}}
	nodes := map[string]bool{}
	for _, s := range known {
		nodes[s] = true
	}
	adj := map[string][]string{} // service → backends it needs
	for svc, def := range defs {
		nodes[svc] = true
		for _, ep := range def.Endpoints {
			for _, ref := range ep.Backends {
				b, err := ParseBackend(ref)
				if err != nil {
					continue // validated on write
				}
				to := b.Service()
				nodes[to] = true
				g.Edges = append(g.Edges, api.GraphEdge{From: svc, Endpoint: ep.Name, To: to, Backend: ref})
				if !slices.Contains(adj[svc], to) {
					adj[svc] = append(adj[svc], to)
				}
			}
		}
	}
	for n := range nodes {
		g.Nodes = append(g.Nodes, n)
	}
	slices.Sort(g.Nodes)
	slices.SortFunc(g.Edges, func(a, b api.GraphEdge) int {
		return cmp.Or(cmp.Compare(a.From, b.From), cmp.Compare(a.Endpoint, b.Endpoint), cmp.Compare(a.Backend, b.Backend))
	})
	for _, v := range adj {
		slices.Sort(v)
	}

	// Tarjan's algorithm emits strongly connected components in reverse
	// topological order of the condensation: dependencies first, which is
	// the startup order.
	index, low := map[string]int{}, map[string]int{}
	onStack := map[string]bool{}
	var stack []string
	next := 0
	var strong func(v string)
	strong = func(v string) {
		index[v], low[v] = next, next
		next++
		stack = append(stack, v)
		onStack[v] = true
		for _, w := range adj[v] {
			if _, seen := index[w]; !seen {
				strong(w)
				low[v] = min(low[v], low[w])
			} else if onStack[w] {
				low[v] = min(low[v], index[w])
			}
		}
		if low[v] == index[v] {
			var comp []string
			for {
				w := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				onStack[w] = false
				comp = append(comp, w)
				if w == v {
					break
				}
			}
			slices.Sort(comp)
			g.StartupOrder = append(g.StartupOrder, comp...)
			if len(comp) > 1 || slices.Contains(adj[v], v) {
				g.Cycles = append(g.Cycles, comp)
			}
		}
	}
	for _, n := range g.Nodes {
		if _, seen := index[n]; !seen {
			strong(n)
		}
	}
	slices.SortFunc(g.Cycles, func(a, b []string) int { return slices.Compare(a, b) })
	return g
}

// Dependents returns the endpoints that need svc directly, and every service
// that needs it directly or through others, sorted.
func Dependents(defs map[string]*api.Definition, svc string) ([]api.Dependent, []string) {
	rev := map[string][]api.Dependent{} // backend service → endpoints that need it
	for from, def := range defs {
		for _, ep := range def.Endpoints {
			for _, ref := range ep.Backends {
				if b, err := ParseBackend(ref); err == nil {
					rev[b.Service()] = append(rev[b.Service()], api.Dependent{Service: from, Endpoint: ep.Name})
				}
			}
		}
	}
	direct := slices.Clone(rev[svc])
	slices.SortFunc(direct, func(a, b api.Dependent) int {
		return cmp.Or(cmp.Compare(a.Service, b.Service), cmp.Compare(a.Endpoint, b.Endpoint))
	})
	direct = slices.Compact(direct)
	seen := map[string]bool{svc: true}
	queue := []string{svc}
	var all []string
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		for _, d := range rev[cur] {
			if !seen[d.Service] {
				seen[d.Service] = true
				all = append(all, d.Service)
				queue = append(queue, d.Service)
			}
		}
	}
	slices.Sort(all)
	if direct == nil {
		direct = []api.Dependent{}
	}
	if all == nil {
		all = []string{}
	}
	return direct, all
}
