// Package registry holds Muster's domain rules: what a valid name, tag and
// instance are, how revision tags are ordered, and which revision becomes the
// default. It does no I/O and keeps no state, so every other package can rely
// on it and it can be tested with tables alone.
package registry

import (
	"errors"
	"fmt"
)

// Sentinel errors of the domain. They are wrapped with %w by every layer and
// mapped to HTTP exactly once, in internal/httpapi.
var (
	ErrValidation     = errors.New("registry: validation failed")
	ErrNotFound       = errors.New("registry: not found")
	ErrConflict       = errors.New("registry: conflict")
	ErrInstanceExists = errors.New("registry: instance exists")
	ErrTokenMismatch  = errors.New("registry: token mismatch")
	ErrCompacted      = errors.New("registry: events compacted")
	ErrNotLeader      = errors.New("registry: not the leader")
)

// FieldError is a validation failure of one field. It unwraps to ErrValidation.
type FieldError struct {
	Field  string
	Reason string
}

// Error says which field is wrong and why.
func (e *FieldError) Error() string { return fmt.Sprintf("%s: %s", e.Field, e.Reason) }

// Unwrap makes errors.Is(err, ErrValidation) true.
func (e *FieldError) Unwrap() error { return ErrValidation }

// Invalid returns a FieldError for field with a formatted reason.
func Invalid(field, format string, args ...any) error {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// NotFoundError says what was not found. It unwraps to ErrNotFound.
type NotFoundError struct {
	What string
}

// Error says what was not found.
func (e *NotFoundError) Error() string { return e.What + " not found" }

// Unwrap makes errors.Is(err, ErrNotFound) true.
func (e *NotFoundError) Unwrap() error { return ErrNotFound }

// NotFound returns a NotFoundError with a formatted description.
func NotFound(format string, args ...any) error {
	return &NotFoundError{What: fmt.Sprintf(format, args...)}
}

// ConflictError says why a write conflicts with what is stored. It unwraps to ErrConflict.
type ConflictError struct {
	Why string
}

// Error says why the write conflicts.
func (e *ConflictError) Error() string { return e.Why }

// Unwrap makes errors.Is(err, ErrConflict) true.
func (e *ConflictError) Unwrap() error { return ErrConflict }

// Conflict returns a ConflictError with a formatted reason.
func Conflict(format string, args ...any) error {
	return &ConflictError{Why: fmt.Sprintf(format, args...)}
}
