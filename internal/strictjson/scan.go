package strictjson

import (
	"bytes"
	"reflect"
)

// scanner is Check's fast path: one pass over the bytes, without the
// allocations of json.Decoder.Token. It answers only the common case, a
// well-formed document with nothing to refuse, and gives up (ok false) on
// anything else: a key to refuse, a key with escapes or non-ASCII bytes, a
// syntax error, deep nesting or an object with many keys. Check then runs
// the token walk, which finds the same thing the same way it always has, so
// the fast path changes no answer and no message.
type scanner struct {
	data []byte
	i    int
	// fields caches jsonFields per struct type for this document (a batch
	// repeats one type hundreds of times).
	fields []typeFields
}

type typeFields struct {
	t      reflect.Type
	fields map[string]reflect.Type
}

const (
	maxScanDepth = 64
	maxScanKeys  = 32 // more keys per object: the walk's map, not a linear search
)

// check scans one JSON value of type t and records the top-level keys whose
// value is not null in top. ok false means: ask the token walk.
func (s *scanner) check(t reflect.Type, top map[string]bool) (ok bool) {
	_, ok = s.value(t, top, 0)
	return ok
}

func (s *scanner) skipSpace() {
	for s.i < len(s.data) {
		switch s.data[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// value scans one value; null reports whether it was the literal null.
func (s *scanner) value(t reflect.Type, top map[string]bool, depth int) (null, ok bool) {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	s.skipSpace()
	if s.i >= len(s.data) || depth > maxScanDepth {
		return false, false
	}
	switch c := s.data[s.i]; {
	case c == '{':
		return false, s.object(t, top, depth)
	case c == '[':
		return false, s.array(t, depth)
	case c == '"':
		_, _, ok := s.str(false)
		return false, ok
	case c == 'n':
		return true, s.literal("null")
	case c == 't':
		return false, s.literal("true")
	case c == 'f':
		return false, s.literal("false")
	case c == '-' || ('0' <= c && c <= '9'):
		return false, s.number()
	}
	return false, false
}

func (s *scanner) object(t reflect.Type, top map[string]bool, depth int) bool {
	s.i++ // '{'
	var fields map[string]reflect.Type
	var elem reflect.Type
	isStruct := t != nil && t.Kind() == reflect.Struct
	if isStruct {
		fields = s.fieldsOf(t)
	} else if t != nil && t.Kind() == reflect.Map {
		elem = t.Elem()
	}
	var stack [8][]byte
	seen := stack[:0]
	s.skipSpace()
	if s.i < len(s.data) && s.data[s.i] == '}' {
		s.i++
		return true
	}
	for {
		s.skipSpace()
		start, end, ok := s.str(true)
		if !ok || len(seen) == maxScanKeys {
			return false
		}
		key := s.data[start:end]
		for _, k := range seen {
			if bytes.Equal(k, key) {
				return false // repeated key: the walk names it
			}
		}
		seen = append(seen, key)
		next := elem
		if isStruct {
			ft, exact := fields[string(key)]
			if !exact {
				return false // unknown or wrong case: the walk names it
			}
			next = ft
		}
		s.skipSpace()
		if s.i >= len(s.data) || s.data[s.i] != ':' {
			return false
		}
		s.i++
		null, ok := s.value(next, nil, depth+1)
		if !ok || null && stringMap(elem) {
			return false // a null string in a map: the walk names it
		}
		if top != nil && !null {
			top[string(key)] = true
		}
		s.skipSpace()
		if s.i >= len(s.data) {
			return false
		}
		switch s.data[s.i] {
		case ',':
			s.i++
		case '}':
			s.i++
			return true
		default:
			return false
		}
	}
}

func (s *scanner) array(t reflect.Type, depth int) bool {
	s.i++ // '['
	var elem reflect.Type
	if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
		elem = t.Elem()
	}
	s.skipSpace()
	if s.i < len(s.data) && s.data[s.i] == ']' {
		s.i++
		return true
	}
	for {
		if _, ok := s.value(elem, nil, depth+1); !ok {
			return false
		}
		s.skipSpace()
		if s.i >= len(s.data) {
			return false
		}
		switch s.data[s.i] {
		case ',':
			s.i++
		case ']':
			s.i++
			return true
		default:
			return false
		}
	}
}

// str scans a string and returns the bounds of its contents. A key (plain)
// must be printable ASCII without escapes, so that its bytes are its value.
func (s *scanner) str(plain bool) (start, end int, ok bool) {
	if s.i >= len(s.data) || s.data[s.i] != '"' {
		return 0, 0, false
	}
	s.i++
	start = s.i
	for s.i < len(s.data) {
		c := s.data[s.i]
		switch {
		case c == '"':
			s.i++
			return start, s.i - 1, true
		case c < 0x20, plain && (c == '\\' || c >= 0x80):
			return 0, 0, false
		case c == '\\':
			if !s.escape() {
				return 0, 0, false
			}
			continue
		}
		s.i++
	}
	return 0, 0, false
}

// escape checks the escape sequence at s.i and steps over it.
func (s *scanner) escape() bool {
	if s.i+1 >= len(s.data) {
		return false
	}
	switch s.data[s.i+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		s.i += 2
		return true
	case 'u':
		if s.i+6 > len(s.data) {
			return false
		}
		for _, h := range s.data[s.i+2 : s.i+6] {
			if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
				return false
			}
		}
		s.i += 6
		return true
	}
	return false
}

func (s *scanner) literal(lit string) bool {
	if !bytes.HasPrefix(s.data[s.i:], []byte(lit)) {
		return false
	}
	s.i += len(lit)
	return true
}

// number steps over a number of JSON's grammar.
func (s *scanner) number() bool {
	if s.data[s.i] == '-' {
		s.i++
	}
	switch {
	case s.i < len(s.data) && s.data[s.i] == '0':
		s.i++
	case s.digits() == 0:
		return false
	}
	if s.i < len(s.data) && s.data[s.i] == '.' {
		s.i++
		if s.digits() == 0 {
			return false
		}
	}
	if s.i < len(s.data) && (s.data[s.i] == 'e' || s.data[s.i] == 'E') {
		s.i++
		if s.i < len(s.data) && (s.data[s.i] == '+' || s.data[s.i] == '-') {
			s.i++
		}
		if s.digits() == 0 {
			return false
		}
	}
	return true
}

func (s *scanner) digits() int {
	n := 0
	for s.i < len(s.data) && '0' <= s.data[s.i] && s.data[s.i] <= '9' {
		s.i++
		n++
	}
	return n
}

func (s *scanner) fieldsOf(t reflect.Type) map[string]reflect.Type {
	for _, tf := range s.fields {
		if tf.t == t {
			return tf.fields
		}
	}
	fields := map[string]reflect.Type{}
	jsonFields(t, fields)
	s.fields = append(s.fields, typeFields{t, fields})
	return fields
}
