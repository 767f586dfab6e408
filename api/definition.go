package api

// Exposure types.
const (
	ExposureHTTP         = "http"
	ExposureHTTPFallback = "http-fallback"
	ExposureTopic        = "topic"
	ExposureCron         = "cron"
)

// Definition is a service's endpoints
// (PUT/GET /v1/services/{ns}/{name}/definition).
type Definition struct {
	Endpoints []Endpoint `json:"endpoints"`
}

// Endpoint is one thing a service does: the backends it needs and how it is
// exposed.
type Endpoint struct {
	Name string `json:"name"`
	// Backends are service references "ns/name", optionally with a semver
	// constraint on the revision: "acme/queue@^2".
	Backends    []string   `json:"backends,omitempty"`
	Exposures   []Exposure `json:"exposures,omitempty"`
	Permissions []string   `json:"permissions,omitempty"`
}

// Exposure is one way an endpoint is reached: an HTTP route (Method, Path),
// the HTTP fallback, a topic consumer (Topic) or a cron schedule (Schedule).
type Exposure struct {
	Type     string `json:"type"`
	Method   string `json:"method,omitempty"`
	Path     string `json:"path,omitempty"`
	Topic    string `json:"topic,omitempty"`
	Schedule string `json:"schedule,omitempty"`
}

// DefinitionDiff is the payload of a service.update event for a definition
// change: the endpoints added, removed and changed, by name.
type DefinitionDiff struct {
	Change  string   `json:"change"` // "definition"
	Added   []string `json:"added"`
	Removed []string `json:"removed"`
	Changed []string `json:"changed"`
}

// Readiness is the answer of GET /v1/services/{ns}/{name}/readiness.
type Readiness struct {
	// Ready is true when every endpoint is enabled.
	Ready     bool                `json:"ready"`
	Endpoints []EndpointReadiness `json:"endpoints"`
}

// EndpointReadiness says whether one endpoint is enabled, and which backends
// it misses.
type EndpointReadiness struct {
	Name    string   `json:"name"`
	Enabled bool     `json:"enabled"`
	Missing []string `json:"missing"`
}

// EndpointStatePayload is the payload of endpoint.enabled and endpoint.disabled.
type EndpointStatePayload struct {
	Endpoint string   `json:"endpoint"`
	Missing  []string `json:"missing"`
}

// Graph is the answer of GET /v1/graph: services as nodes, an edge from each
// endpoint to each backend it needs, the order to start them (backends
// before dependents) and the cycles, which are reported, not refused.
type Graph struct {
	Nodes        []string    `json:"nodes"`
	Edges        []GraphEdge `json:"edges"`
	StartupOrder []string    `json:"startup_order"`
	Cycles       [][]string  `json:"cycles"`
}

// GraphEdge says that Endpoint of service From needs the backend To
// (a service, with the constraint as written).
type GraphEdge struct {
	From     string `json:"from"`
	Endpoint string `json:"endpoint"`
	To       string `json:"to"`
	Backend  string `json:"backend"`
}

// Dependents is the answer of GET /v1/services/{ns}/{name}/dependents: what
// breaks if the service goes down, directly or through others.
type Dependents struct {
	Service    string      `json:"service"`
	Direct     []Dependent `json:"direct"`
	Transitive []string    `json:"transitive"`
}

// Dependent is one endpoint that needs the service.
type Dependent struct {
	Service  string `json:"service"`
	Endpoint string `json:"endpoint"`
}
