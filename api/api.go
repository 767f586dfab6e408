// Package api holds the wire types of Muster's HTTP API (v1): the JSON that the
// server writes and the SDK reads. It has no behaviour beyond encoding, so the
// server and every client agree on one definition.
package api

import (
	"encoding/json"
	"time"
)

// Header names used by the API.
const (
	// HeaderIndex carries the id of the newest event that an answer reflects.
	HeaderIndex = "X-Muster-Index"
	// HeaderRequestID carries the id of the request, on every response.
	HeaderRequestID = "X-Request-Id"
	// HeaderRequester names the caller for revision selection.
	HeaderRequester = "X-Muster-Requester"
	// HeaderRoute names the policy route (or "hook") that picked the revision
	// a GET /v1/services/{ns}/{name} answers with.
	HeaderRoute = "X-Muster-Route"
	// HeaderFallback is "true" when that pick had no passing instance and
	// the default revision was answered instead.
	HeaderFallback = "X-Muster-Fallback"
)

// Limits of the API, shared by the server's validation and the SDK.
const (
	MaxBodyBytes            = 64 << 10
	MinHeartbeatTimeout     = 3
	MaxHeartbeatTimeout     = 120
	DefaultHeartbeatTimeout = 30
	MaxTags                 = 32
	MaxTagLen               = 64
	MaxMetadata             = 64
	MaxMetadataKeyLen       = 128
	MaxMetadataValueLen     = 1024
	MaxEndpoints            = 256
	MaxEndpointLen          = 256
	MaxPublicURLLen         = 2048
	MaxAddressLen           = 255
	DefaultListLimit        = 1000
	MaxListLimit            = 10000
	MaxWaitSeconds          = 300
)

// Instance statuses.
const (
	// StatusPassing: the instance heartbeated within its timeout.
	StatusPassing = "passing"
	// StatusCritical: the deadline has passed and the expiry is being committed;
	// it is never shown as passing and disappears with its instance.timeout event.
	StatusCritical = "critical"
)

// Event types.
const (
	EventRevisionRegister = "revision.register"
	EventRevisionDefault  = "revision.default"
	EventRevisionRemove   = "revision.remove"
	EventInstanceJoin     = "instance.join"
	EventInstanceUpdate   = "instance.update"
	EventInstanceRemove   = "instance.remove"
	EventInstanceTimeout  = "instance.timeout"
	EventServiceUpdate    = "service.update"
	EventEndpointEnabled  = "endpoint.enabled"
	EventEndpointDisabled = "endpoint.disabled"
)

// EventTypes lists every event type, in the order of the list above.
func EventTypes() []string {
	return []string{
		EventRevisionRegister, EventRevisionDefault, EventRevisionRemove,
		EventInstanceJoin, EventInstanceUpdate, EventInstanceRemove, EventInstanceTimeout,
		EventServiceUpdate, EventEndpointEnabled, EventEndpointDisabled,
	}
}

// Error is the body of every error answer.
type Error struct {
	Error     string `json:"error"`
	Type      string `json:"type"`
	Details   string `json:"details,omitempty"`
	RequestID string `json:"request_id,omitempty"`
}

// Error types (the stable "type" field of Error).
const (
	ErrBadRequest       = "bad_request"
	ErrInvalidJSON      = "invalid_json"
	ErrValidationFailed = "validation_failed"
	ErrUnauthorized     = "unauthorized"
	ErrForbidden        = "forbidden"
	ErrNotFound         = "not_found"
	ErrMethodNotAllowed = "method_not_allowed"
	ErrConflict         = "conflict"
	ErrInstanceExists   = "instance_exists"
	ErrTokenMismatch    = "token_mismatch"
	ErrEventsCompacted  = "events_compacted"
	ErrRequestTooLarge  = "request_too_large"
	ErrRateLimited      = "rate_limited"
	ErrUnavailable      = "unavailable"
	ErrInternal         = "internal"
)

// RegisterRevisionRequest is the body of POST /v1/services/{ns}/{name}.
// IsDefault is a pointer so that "absent" (let the default rule decide) differs
// from false (keep it non-default).
type RegisterRevisionRequest struct {
	RevisionTag string            `json:"revision_tag"`
	IsDefault   *bool             `json:"is_default,omitempty"`
	Metadata    map[string]string `json:"metadata,omitempty"`
}

// Revision is one released version of a service.
type Revision struct {
	Namespace   string            `json:"namespace"`
	Name        string            `json:"name"`
	RevisionTag string            `json:"revision_tag"`
	IsDefault   bool              `json:"is_default"`
	CreatedAt   time.Time         `json:"created_at"`
	Metadata    map[string]string `json:"metadata"`
}

// RegisterInstanceRequest is the body of POST …/instances and PUT …/instances/{id}.
// On PUT the id comes from the path and ID must be empty or equal to it.
type RegisterInstanceRequest struct {
	ID               string            `json:"id,omitempty"`
	RevisionTag      string            `json:"revision_tag,omitempty"`
	Address          string            `json:"address,omitempty"`
	Port             int               `json:"port,omitempty"`
	PublicURL        string            `json:"public_url,omitempty"`
	Endpoints        []string          `json:"endpoints,omitempty"`
	Tags             []string          `json:"tags,omitempty"`
	Metadata         map[string]string `json:"metadata,omitempty"`
	HeartbeatTimeout int               `json:"heartbeat_timeout,omitempty"`
}

// PatchInstanceRequest is the body of PATCH …/instances/{id}: only the fields
// present change; a present empty list or map clears that field.
type PatchInstanceRequest struct {
	Tags             *[]string          `json:"tags,omitempty"`
	Metadata         *map[string]string `json:"metadata,omitempty"`
	Endpoints        *[]string          `json:"endpoints,omitempty"`
	PublicURL        *string            `json:"public_url,omitempty"`
	HeartbeatTimeout *int               `json:"heartbeat_timeout,omitempty"`
}

// Instance is one running process of a service.
type Instance struct {
	Namespace        string            `json:"namespace"`
	Service          string            `json:"service"`
	ID               string            `json:"id"`
	RevisionTag      string            `json:"revision_tag"`
	Address          string            `json:"address"`
	Port             int               `json:"port"`
	PublicURL        string            `json:"public_url"`
	Endpoints        []string          `json:"endpoints"`
	Tags             []string          `json:"tags"`
	Metadata         map[string]string `json:"metadata"`
	HeartbeatTimeout int               `json:"heartbeat_timeout"`
	Status           string            `json:"status"`
	RegisteredAt     time.Time         `json:"registered_at"`
	LastHeartbeatAt  time.Time         `json:"last_heartbeat_at"`
	ExpiresAt        time.Time         `json:"expires_at"`
}

// Registration is the answer to registering an instance: the instance and the
// first heartbeat token.
type Registration struct {
	Instance
	Token string `json:"token"`
}

// HeartbeatRequest is the body of POST …/instances/{id}/heartbeat.
type HeartbeatRequest struct {
	Token string `json:"token"`
}

// HeartbeatResponse is the answer to a heartbeat: the next token and the new deadline.
type HeartbeatResponse struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
}

// ListMetadata describes one page of a list.
type ListMetadata struct {
	Count      int     `json:"count"`
	Limit      int     `json:"limit"`
	NextMarker *string `json:"next_marker"`
}

// List is one page of a list answer.
type List[T any] struct {
	Values   []T          `json:"values"`
	Metadata ListMetadata `json:"metadata"`
}

// ServiceSummary is one row of GET /v1/services.
type ServiceSummary struct {
	Namespace       string    `json:"namespace"`
	Name            string    `json:"name"`
	DefaultRevision *Revision `json:"default_revision"`
	Revisions       int       `json:"revisions"`
	Instances       int       `json:"instances"`
	Passing         int       `json:"passing"`
	Tags            []string  `json:"tags"`
}

// Event is one fact of the ordered feed.
type Event struct {
	ID        uint64          `json:"id"`
	Type      string          `json:"type"`
	Namespace string          `json:"namespace"`
	Service   string          `json:"service"`
	Time      time.Time       `json:"time"`
	Payload   json.RawMessage `json:"payload"`
}

// EventList is the answer of GET /v1/events. Next is the id to pass as `after`
// to continue.
type EventList struct {
	Events []Event `json:"events"`
	Next   uint64  `json:"next"`
}

// InstanceRemovedPayload is the payload of instance.remove and instance.timeout.
type InstanceRemovedPayload struct {
	ID          string    `json:"id"`
	RevisionTag string    `json:"revision_tag"`
	Deadline    time.Time `json:"deadline,omitzero"`
}

// RevisionDefaultPayload is the payload of revision.default.
type RevisionDefaultPayload struct {
	RevisionTag string `json:"revision_tag"`
	Previous    string `json:"previous,omitempty"`
}

// URLMapConflict reports a resource claimed by more than one public URL, and
// which one won.
type URLMapConflict struct {
	Resource   string   `json:"resource"`
	Chosen     string   `json:"chosen"`
	ChosenFrom string   `json:"chosen_from"`
	Candidates []string `json:"candidates"`
}

// URLMap is the answer of GET /v1/url-map/{ns}.
type URLMap struct {
	URLMap    map[string]string `json:"url_map"`
	Conflicts []URLMapConflict  `json:"conflicts"`
}

// Health is the answer of GET /v1/health.
type Health struct {
	Status string `json:"status"`
}

// Status is the answer of GET /v1/status.
type Status struct {
	NodeID        string `json:"node_id"`
	Role          string `json:"role"`
	Leader        string `json:"leader"`
	RaftIndex     uint64 `json:"raft_index"`
	EventIndex    uint64 `json:"event_index"`
	OldestEvent   uint64 `json:"oldest_event"`
	Namespaces    int    `json:"namespaces"`
	Services      int    `json:"services"`
	Revisions     int    `json:"revisions"`
	Instances     int    `json:"instances"`
	Version       string `json:"version"`
	DataDir       string `json:"data_dir"`
	Dev           bool   `json:"dev"`
	UptimeSeconds int64  `json:"uptime_seconds"`
}
