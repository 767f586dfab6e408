package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/muster-registry/muster/internal/registry"
)

// checkKeys walks a JSON document alongside the Go type it will be decoded
// into and refuses what encoding/json would silently accept: a field name in
// another case than its tag ("Revision_Tag"), and a key given twice (where
// the last would win). It returns the keys present at the top level. Unknown
// fields are left to DisallowUnknownFields; syntax errors to the decoder.
func checkKeys(data []byte, t reflect.Type) (map[string]bool, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	present := map[string]bool{}
	var ke *keyError
	if err := walk(dec, t, "", present); errors.As(err, &ke) {
		return nil, registry.Invalid(ke.field, "%s", ke.reason)
	}
	// Syntax problems are reported by the decoder that runs next.
	return present, nil
}

type keyError struct{ field, reason string }

func (e *keyError) Error() string { return e.field + ": " + e.reason }

func walk(dec *json.Decoder, t reflect.Type, path string, top map[string]bool) error {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	delim, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	switch delim {
	case '[':
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for i := 0; dec.More(); i++ {
			if err := walk(dec, elem, fmt.Sprintf("%s[%d]", path, i), nil); err != nil {
				return err
			}
		}
		_, err = dec.Token()
		return err
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
				return err
			}
			key, _ := kt.(string)
			field := key
			if path != "" {
				field = path + "." + key
			}
			if seen[key] {
				return &keyError{field, "is given more than once"}
			}
			seen[key] = true
			if top != nil {
				top[key] = true
			}
			next := mapElem
			if isStruct {
				ft, exact := fields[key]
				if !exact {
					for name := range fields {
						if strings.EqualFold(name, key) {
							return &keyError{field, fmt.Sprintf("unknown field (did you mean %q? field names are case-sensitive)", name)}
						}
					}
				}
				next = ft
			}
			if err := walk(dec, next, field, nil); err != nil {
				return err
			}
		}
		_, err = dec.Token()
		return err
	}
	return nil
}

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
