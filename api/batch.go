package api

import "time"

// Limits of POST /v1/heartbeats: the most heartbeats in one batch, and the
// body limit of that route (the only one above MaxBodyBytes, since a full
// batch does not fit 64 KiB).
const (
	MaxBatchHeartbeats = 5000
	MaxBatchBodyBytes  = 1 << 20
)

// BatchHeartbeatRequest is the body of POST /v1/heartbeats: heartbeats of
// many instances, for an agent that fronts them.
type BatchHeartbeatRequest struct {
	Heartbeats []BatchHeartbeat `json:"heartbeats"`
}

// BatchHeartbeat names one instance and its current token.
type BatchHeartbeat struct {
	Namespace string `json:"namespace"`
	Service   string `json:"service"`
	ID        string `json:"id"`
	Token     string `json:"token"`
}

// BatchHeartbeatResponse answers each heartbeat of a batch on its own, in
// the order they were sent.
type BatchHeartbeatResponse struct {
	Results []BatchHeartbeatResult `json:"results"`
}

// BatchHeartbeatResult is one heartbeat's answer: the next token and
// deadline, or the error that heartbeat alone would have got (Error.Type
// not_found, token_mismatch, validation_failed, …).
type BatchHeartbeatResult struct {
	Token     string    `json:"token,omitempty"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	Error     *Error    `json:"error,omitempty"`
}
