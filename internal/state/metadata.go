package state

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
)

// Pair is one metadata key and its value.
type Pair struct {
	Key   string
	Value string
}

// Metadata is a stored instance's metadata: its pairs sorted by key, each key
// once. A million instances with a few pairs each are the common case, and a
// sorted slice holds four pairs in 128 bytes where a map takes about 300.
// Like every stored record it is never modified once stored.
//
// Its JSON is the object that a map[string]string encodes to (keys sorted,
// null for nil), so commands in the log and JSON snapshots read the same
// whichever of the two wrote them.
type Metadata []Pair

// MetadataOf returns m as Metadata: nil for a nil map, empty (not nil) for
// an empty one.
func MetadataOf(m map[string]string) Metadata {
	if m == nil {
		return nil
	}
	md := make(Metadata, 0, len(m))
	for k, v := range m {
		md = append(md, Pair{k, v})
	}
	slices.SortFunc(md, func(a, b Pair) int { return cmp.Compare(a.Key, b.Key) })
	return md
}

// WireMap returns the pairs as a new map, as the API shows metadata: {} for
// none, never null.
func (md Metadata) WireMap() map[string]string {
	if m := md.Map(); m != nil {
		return m
	}
	return map[string]string{}
}

// Map returns the pairs as a new map; nil for nil Metadata.
func (md Metadata) Map() map[string]string {
	if md == nil {
		return nil
	}
	m := make(map[string]string, len(md))
	for _, p := range md {
		m[p.Key] = p.Value
	}
	return m
}

// Get returns the value of key.
func (md Metadata) Get(key string) (string, bool) {
	i, ok := slices.BinarySearchFunc(md, key, func(p Pair, k string) int { return cmp.Compare(p.Key, k) })
	if !ok {
		return "", false
	}
	return md[i].Value, true
}

// valid reports whether the keys are sorted and unique, as every Metadata
// made here is; a snapshot that breaks it is refused.
func (md Metadata) valid() bool {
	for i := 1; i < len(md); i++ {
		if md[i-1].Key >= md[i].Key {
			return false
		}
	}
	return true
}

// MarshalJSON encodes the pairs as a JSON object, keys in order. Strings are
// written without HTML escaping: encoding/json applies its own setting to
// what a Marshaler returns, so the result is byte for byte what it writes
// for the equivalent map.
func (md Metadata) MarshalJSON() ([]byte, error) {
	if md == nil {
		return []byte("null"), nil
	}
	return AppendMetadataJSON(make([]byte, 0, 16+24*len(md)), md), nil
}

// AppendMetadataJSON appends md as a JSON object ({} for nil), with strings
// escaped as encoding/json escapes them with HTML escaping off.
func AppendMetadataJSON(b []byte, md Metadata) []byte {
	b = append(b, '{')
	for i, p := range md {
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendJSONString(b, p.Key)
		b = append(b, ':')
		b = AppendJSONString(b, p.Value)
	}
	return append(b, '}')
}

// AppendJSONString appends s quoted as encoding/json quotes it with HTML
// escaping off. Printable ASCII other than '"' and '\' is copied as is; any
// other string (control characters, non-ASCII, which encoding/json may
// rewrite) is quoted by encoding/json itself.
func AppendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			_ = enc.Encode(s) // a string always encodes
			return append(b, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// UnmarshalJSON decodes a JSON object of strings; null leaves md unchanged.
func (md *Metadata) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("state: metadata: %w", err)
	}
	*md = MetadataOf(m)
	return nil
}
