// Package strictjson finds what encoding/json accepts silently but a strict
// API must refuse: unknown fields (with their full path), field names in
// another case than their tag, and repeated keys. The server and the command
// line use it, so a file the CLI accepts is one the server accepts.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/muster-registry/muster/internal/registry"
)

// Check walks a JSON document alongside the Go type it will be decoded into
// and refuses, as a registry.FieldError naming the field's path, what
// encoding/json would silently accept: an unknown field, a field name in
// another case than its tag ("Revision_Tag"), a key given twice (where
// the last would win), and null as a value of a map of strings (which would
// be stored as ""). It returns the top-level keys whose value is not
// null, so a caller can tell "absent" from "zero". Syntax errors are left to
// the decoder that runs next.
func Check(data []byte, t reflect.Type) (map[string]bool, error) {
	present := map[string]bool{}
	if s := (scanner{data: data}); s.check(t, present) {
		return present, nil
	}
	// Something to refuse, or something the scanner leaves to the walk.
	clear(present)
	return walkCheck(data, t, present)
}

// walkCheck is Check by json.Decoder tokens: the reference that the
// scanner's answers must agree with.
func walkCheck(data []byte, t reflect.Type, present map[string]bool) (map[string]bool, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var ke *keyError
	if _, err := walk(dec, t, "", present); errors.As(err, &ke) {
		return nil, registry.Invalid(ke.field, "%s", ke.reason)
	}
	// Syntax problems are reported by the decoder that runs next.
	return present, nil
}

type keyError struct{ field, reason string }

func (e *keyError) Error() string { return e.field + ": " + e.reason }

// walk checks one JSON value; it reports whether the value was null.
func walk(dec *json.Decoder, t reflect.Type, path string, top map[string]bool) (bool, error) {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	tok, err := dec.Token()
	if err != nil {
		return false, err
	}
	delim, ok := tok.(json.Delim)
	if !ok {
		return tok == nil, nil
	}
	switch delim {
	case '[':
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for i := 0; dec.More(); i++ {
			if _, err := walk(dec, elem, fmt.Sprintf("%s[%d]", path, i), nil); err != nil {
				return false, err
			}
		}
		_, err = dec.Token()
		return false, err
	case '{':
		fields := map[string]reflect.Type{}
		isStruct := t != nil && t.Kind() == reflect.Struct
		var mapElem reflect.Type
		if isStruct {
			jsonFields(t, fields)
		} else if t != nil && t.Kind() == reflect.Map {
			mapElem = t.Elem()
		}
		seen := map[string]bool{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return false, err
			}
			key, _ := kt.(string)
			field := key
			if path != "" {
				field = path + "." + key
			}
			if seen[key] {
				return false, &keyError{field, "is given more than once"}
			}
			seen[key] = true
			next := mapElem
			if isStruct {
				ft, exact := fields[key]
				if !exact {
					for name := range fields {
						if strings.EqualFold(name, key) {
							return false, &keyError{field, fmt.Sprintf("unknown field (did you mean %q? field names are case-sensitive)", name)}
						}
					}
					return false, &keyError{field, "unknown field"}
				}
				next = ft
			}
			null, err := walk(dec, next, field, nil)
			if err != nil {
				return false, err
			}
			if null && stringMap(mapElem) {
				// encoding/json would store "" for it without a word.
				return false, &keyError{field, "must be a string, not null"}
			}
			if top != nil && !null {
				top[key] = true
			}
		}
		_, err = dec.Token()
		return false, err
	}
	return false, nil
}

// stringMap reports whether elem, a map's element type (nil for no map),
// is a string.
func stringMap(elem reflect.Type) bool { return elem != nil && elem.Kind() == reflect.String }

// jsonFields lists a struct's JSON field names and types, following
// embedded structs as encoding/json does.
func jsonFields(t reflect.Type, out map[string]reflect.Type) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				jsonFields(ft, out)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
}
