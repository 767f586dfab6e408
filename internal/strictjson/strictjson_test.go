package strictjson_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/muster-registry/muster/api"
	"github.com/muster-registry/muster/internal/registry"
	"github.com/muster-registry/muster/internal/strictjson"
)

func TestCheck(t *testing.T) {
	policy := reflect.TypeOf(&api.Policy{})
	reg := reflect.TypeOf(&api.RegisterInstanceRequest{})
	cases := []struct {
		name, body string
		typ        reflect.Type
		field      string // "" when accepted
	}{
		{"valid", `{"default_rule":"manual","routes":[{"name":"a","revision":"1.0.0","match":{"headers":{"X-A":"b"}}}]}`, policy, ""},
		{"wrong case at the top", `{"Routes":[]}`, policy, "Routes"},
		{"wrong case nested", `{"routes":[{"Name":"a"}]}`, policy, "routes[0].Name"},
		{"unknown nested field has its path", `{"routes":[{"name":"a","match":{"hosts":["x"]}}]}`, policy, "routes[0].match.hosts"},
		{"repeated key", `{"default_rule":"manual","default_rule":"latest_semver"}`, policy, "default_rule"},
		{"repeated map key", `{"routes":[{"name":"a","match":{"labels":{"k":"1","k":"2"}}}]}`, policy, "routes[0].match.labels.k"},
		{"map keys are data, any case", `{"metadata":{"Key":"v","key":"w"}}`, reg, ""},
		{"syntax errors are left to the decoder", `{"routes":[`, policy, ""},
		{"null string in a map", `{"metadata":{"a":"1","b":null}}`, reg, "metadata.b"},
		{"null string in a nested map", `{"routes":[{"name":"a","match":{"labels":{"k":null}}}]}`, policy, "routes[0].match.labels.k"},
		{"a null map is absent", `{"metadata":null}`, reg, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := strictjson.Check([]byte(tc.body), tc.typ)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var fe *registry.FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field {
				t.Fatalf("err = %v, want a FieldError for %s", err, tc.field)
			}
		})
	}
}

// Present keys are those with a non-null value: null means absent.
func TestPresent(t *testing.T) {
	present, err := strictjson.Check([]byte(`{"id":"a","heartbeat_timeout":null,"port":0}`), reflect.TypeOf(&api.RegisterInstanceRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	if !present["id"] || !present["port"] || present["heartbeat_timeout"] {
		t.Fatalf("present = %v", present)
	}
}
