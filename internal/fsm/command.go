package fsm

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/muster-registry/muster/api"
	"github.com/muster-registry/muster/internal/state"
)

// Type is the one-byte tag in front of every encoded command. Values are
// append-only: a number, once used, keeps its meaning forever, because old
// logs and snapshots are replayed by newer binaries.
type Type byte

// Command types.
const (
	TypeRegisterRevision   Type = 1
	TypeDeleteRevision     Type = 2
	TypeRegisterInstance   Type = 3
	TypePatchInstance      Type = 4
	TypeDeregisterInstance Type = 5
	TypeExpireInstances    Type = 6
	TypeSetPolicy          Type = 7
	TypeDeletePolicy       Type = 8
	TypeSetDefinition      Type = 9
)

// Command is a state change, stamped by the leader with the time it happened.
type Command interface {
	commandType() Type
}

// RegisterRevision stores a revision (POST /v1/services/{ns}/{name}).
type RegisterRevision struct {
	Time      time.Time `json:"time"`
	Namespace string    `json:"namespace"`
	Name      string    `json:"name"`
	Tag       string    `json:"tag"`
	IsDefault *bool     `json:"is_default,omitempty"`
	// Metadata is null when the request gave none, {} when it gave an empty map.
	Metadata map[string]string `json:"metadata"`
}

// DeleteRevision removes a revision.
type DeleteRevision struct {
	Time      time.Time `json:"time"`
	Namespace string    `json:"namespace"`
	Name      string    `json:"name"`
	Tag       string    `json:"tag"`
}

// RegisterInstance starts a registration. Replace says whether a live
// registration of the same id is ended (PUT) or refused (POST). Token is the
// first heartbeat token, made by the leader so that apply stays deterministic.
type RegisterInstance struct {
	Time     time.Time      `json:"time"`
	Replace  bool           `json:"replace"`
	Instance state.Instance `json:"instance"`
	// ReplaceDead, on a POST, names a registration of the same id that the
	// leader saw past its deadline: if it is still the live one, it times out
	// (stamped with its deadline) and the new registration takes the id.
	ReplaceDead *state.Expiry `json:"replace_dead,omitempty"`
}

// PatchInstance changes fields of a live registration. LastBeat and
// Deadline are the lease as the leader knew it, for the event's payload (a
// patch does not renew the lease).
type PatchInstance struct {
	Time     time.Time                `json:"time"`
	Key      state.InstanceKey        `json:"key"`
	Patch    api.PatchInstanceRequest `json:"patch"`
	LastBeat time.Time                `json:"last_beat,omitzero"`
	Deadline time.Time                `json:"deadline,omitzero"`
}

// SetPolicy stores a service's revision selection policy.
type SetPolicy struct {
	Time      time.Time  `json:"time"`
	Namespace string     `json:"namespace"`
	Name      string     `json:"name"`
	Policy    api.Policy `json:"policy"`
}

// SetDefinition stores a service's endpoint definition.
type SetDefinition struct {
	Time       time.Time      `json:"time"`
	Namespace  string         `json:"namespace"`
	Name       string         `json:"name"`
	Definition api.Definition `json:"definition"`
}

// DeletePolicy returns a service to the default policy.
type DeletePolicy struct {
	Time      time.Time `json:"time"`
	Namespace string    `json:"namespace"`
	Name      string    `json:"name"`
}

// DeregisterInstance ends a registration on request.
type DeregisterInstance struct {
	Time time.Time         `json:"time"`
	Key  state.InstanceKey `json:"key"`
}

// ExpireInstances ends registrations whose deadlines passed.
type ExpireInstances struct {
	Time  time.Time      `json:"time"`
	Items []state.Expiry `json:"items"`
}

func (*RegisterRevision) commandType() Type   { return TypeRegisterRevision }
func (*DeleteRevision) commandType() Type     { return TypeDeleteRevision }
func (*RegisterInstance) commandType() Type   { return TypeRegisterInstance }
func (*PatchInstance) commandType() Type      { return TypePatchInstance }
func (*DeregisterInstance) commandType() Type { return TypeDeregisterInstance }
func (*ExpireInstances) commandType() Type    { return TypeExpireInstances }
func (*SetPolicy) commandType() Type          { return TypeSetPolicy }
func (*DeletePolicy) commandType() Type       { return TypeDeletePolicy }
func (*SetDefinition) commandType() Type      { return TypeSetDefinition }

// Encode returns the log entry bytes of c: its type tag, then its body:
// JSON, or the binary bodies of RegisterInstance (register_bin.go) and
// ExpireInstances (expire_bin.go).
func Encode(c Command) ([]byte, error) {
	switch c := c.(type) {
	case *RegisterInstance:
		return encodeRegisterInstance(c)
	case *ExpireInstances:
		return encodeExpireInstances(c)
	}
	return encodeJSON(c)
}

// encodeJSON is the type tag and c as JSON.
func encodeJSON(c Command) ([]byte, error) {
	body, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("fsm: encoding command %d: %w", c.commandType(), err)
	}
	return append([]byte{byte(c.commandType())}, body...), nil
}

// Decode parses log entry bytes written by Encode.
func Decode(b []byte) (Command, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("fsm: empty command")
	}
	var c Command
	switch Type(b[0]) {
	case TypeRegisterRevision:
		c = &RegisterRevision{}
	case TypeDeleteRevision:
		c = &DeleteRevision{}
	case TypeRegisterInstance:
		if len(b) > 1 && b[1] == registerBinV1 {
			return decodeRegisterInstance(b[2:])
		}
		c = &RegisterInstance{}
	case TypePatchInstance:
		c = &PatchInstance{}
	case TypeDeregisterInstance:
		c = &DeregisterInstance{}
	case TypeExpireInstances:
		if len(b) > 1 && b[1] == expireBinV1 {
			return decodeExpireInstances(b[2:])
		}
		c = &ExpireInstances{}
	case TypeSetPolicy:
		c = &SetPolicy{}
	case TypeDeletePolicy:
		c = &DeletePolicy{}
	case TypeSetDefinition:
		c = &SetDefinition{}
	default:
		return nil, fmt.Errorf("fsm: unknown command type %d", b[0])
	}
	if err := json.Unmarshal(b[1:], c); err != nil {
		return nil, fmt.Errorf("fsm: decoding command %d: %w", b[0], err)
	}
	return c, nil
}
