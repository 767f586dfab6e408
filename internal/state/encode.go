package state

import (
	"strconv"
	"time"

	"github.com/muster-registry/muster/api"
)

// Hand-written JSON for what is encoded on every write and every lookup:
// event lines, instance payloads and instance lists. Each writes the bytes
// encoding/json writes with HTML escaping off (field order, escaping, null
// for nil slices, times as time.Time.MarshalJSON writes them);
// TestEncodingMatchesEncodingJSON and the httpapi encoding tests hold them
// to it. ok is false for a time RFC 3339 cannot represent (years outside
// 0-9999): the caller then encodes with encoding/json, which refuses it as
// before.

// AppendInstanceJSON appends v as encoding/json writes an api.Instance,
// with md as its metadata (v.Metadata is not read).
func AppendInstanceJSON(b []byte, v *api.Instance, md Metadata) (_ []byte, ok bool) {
	b = append(b, `{"namespace":`...)
	b = AppendJSONString(b, v.Namespace)
	b = append(b, `,"service":`...)
	b = AppendJSONString(b, v.Service)
	b = append(b, `,"id":`...)
	b = AppendJSONString(b, v.ID)
	b = append(b, `,"revision_tag":`...)
	b = AppendJSONString(b, v.RevisionTag)
	b = append(b, `,"address":`...)
	b = AppendJSONString(b, v.Address)
	b = append(b, `,"port":`...)
	b = strconv.AppendInt(b, int64(v.Port), 10)
	b = append(b, `,"public_url":`...)
	b = AppendJSONString(b, v.PublicURL)
	b = append(b, `,"endpoints":`...)
	b = appendJSONStrings(b, v.Endpoints)
	b = append(b, `,"tags":`...)
	b = appendJSONStrings(b, v.Tags)
	b = append(b, `,"metadata":`...)
	b = AppendMetadataJSON(b, md)
	b = append(b, `,"heartbeat_timeout":`...)
	b = strconv.AppendInt(b, int64(v.HeartbeatTimeout), 10)
	b = append(b, `,"status":`...)
	b = AppendJSONString(b, v.Status)
	if b, ok = AppendJSONTime(b, `,"registered_at":`, v.RegisteredAt); !ok {
		return b, false
	}
	if b, ok = AppendJSONTime(b, `,"last_heartbeat_at":`, v.LastHeartbeatAt); !ok {
		return b, false
	}
	if b, ok = AppendJSONTime(b, `,"expires_at":`, v.ExpiresAt); !ok {
		return b, false
	}
	return append(b, '}'), true
}

// appendRemovedJSON appends p as encoding/json writes an
// api.InstanceRemovedPayload (the deadline left out when zero).
func appendRemovedJSON(b []byte, p *api.InstanceRemovedPayload) (_ []byte, ok bool) {
	b = append(b, `{"id":`...)
	b = AppendJSONString(b, p.ID)
	b = append(b, `,"revision_tag":`...)
	b = AppendJSONString(b, p.RevisionTag)
	if !p.Deadline.IsZero() {
		if b, ok = AppendJSONTime(b, `,"deadline":`, p.Deadline); !ok {
			return b, false
		}
	}
	return append(b, '}'), true
}

// appendEventJSON appends e as encoding/json writes an api.Event whose
// payload is compact JSON (as every payload emit makes is).
func appendEventJSON(b []byte, e *api.Event) (_ []byte, ok bool) {
	b = append(b, `{"id":`...)
	b = strconv.AppendUint(b, e.ID, 10)
	b = append(b, `,"type":`...)
	b = AppendJSONString(b, e.Type)
	b = append(b, `,"namespace":`...)
	b = AppendJSONString(b, e.Namespace)
	b = append(b, `,"service":`...)
	b = AppendJSONString(b, e.Service)
	if b, ok = AppendJSONTime(b, `,"time":`, e.Time); !ok {
		return b, false
	}
	b = append(b, `,"payload":`...)
	if e.Payload == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, e.Payload...)
	}
	return append(b, '}'), true
}

// AppendJSONTime appends key and t as time.Time.MarshalJSON writes it (RFC
// 3339 with the nanoseconds that are not zero, in t's own offset).
func AppendJSONTime(b []byte, key string, t time.Time) (_ []byte, ok bool) {
	b = append(b, key...)
	b = append(b, '"')
	b, err := t.AppendText(b)
	return append(b, '"'), err == nil
}

func appendJSONStrings(b []byte, ss []string) []byte {
	if ss == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendJSONString(b, s)
	}
	return append(b, ']')
}
