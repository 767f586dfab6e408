package registry_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/muster-registry/muster/internal/registry"
)

// checkValid fails t unless err is nil (want true) or a validation error of
// field (want false).
func checkValid(t *testing.T, err error, want bool, field string) {
	t.Helper()
	if want {
		if err != nil {
			t.Fatalf("got error %v, want valid", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("got valid, want a validation error of %q", field)
	}
	if !errors.Is(err, registry.ErrValidation) {
		t.Fatalf("error %v does not unwrap to ErrValidation", err)
	}
	var fe *registry.FieldError
	if !errors.As(err, &fe) || fe.Field != field {
		t.Fatalf("error %v names field %v, want %q", err, fe, field)
	}
}

func TestValidateNamespaceAndServiceName(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  bool
	}{
		{"single letter", "a", true},
		{"single digit", "0", true},
		{"typical", "my-org", true},
		{"digits and dashes", "a1-b2-c3", true},
		{"double dash inside", "a--b", true},
		{"63 characters", strings.Repeat("a", 63), true},
		{"63 with dashes inside", "a" + strings.Repeat("-", 61) + "z", true},
		{"empty", "", false},
		{"64 characters", strings.Repeat("a", 64), false},
		{"leading dash", "-abc", false},
		{"trailing dash", "abc-", false},
		{"only a dash", "-", false},
		{"uppercase", "My-Org", false},
		{"one uppercase letter", "myOrg", false},
		{"underscore", "my_org", false},
		{"dot", "my.org", false},
		{"slash", "my/org", false},
		{"space", "my org", false},
		{"trailing newline", "myorg\n", false},
		{"non-ASCII letter", "caf\u00e9", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkValid(t, registry.ValidateNamespace(tc.input), tc.want, "namespace")
			checkValid(t, registry.ValidateServiceName(tc.input), tc.want, "name")
		})
	}
}

func TestValidateService(t *testing.T) {
	tests := []struct {
		name      string
		ns, svc   string
		wantField string // "" when valid
	}{
		{"both valid", "my-org", "my-service", ""},
		{"bad namespace checked first", "My-Org", "Bad_Name", "namespace"},
		{"bad name", "my-org", "my_service", "name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkValid(t, registry.ValidateService(tc.ns, tc.svc), tc.wantField == "", tc.wantField)
		})
	}
}

func TestValidateRevisionTag(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  bool
	}{
		{"semver", "1.2.9", true},
		{"semver with v", "v1.2.9", true},
		{"prerelease", "2.0.0-rc.1", true},
		{"build metadata", "1.0.0+build.5", true},
		{"word", "latest", true},
		{"mixed case", "Main", true},
		{"leading underscore", "_internal", true},
		{"date", "2024-01-05", true},
		{"single character", "a", true},
		{"128 characters", strings.Repeat("x", 128), true},
		{"empty", "", false},
		{"129 characters", strings.Repeat("x", 129), false},
		{"leading dot", ".hidden", false},
		{"leading plus", "+1", false},
		{"leading dash", "-rc", false},
		{"slash", "feature/x", false},
		{"colon", "a:b", false},
		{"space", "1.0 beta", false},
		{"non-ASCII", "v1\u00b72", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkValid(t, registry.ValidateRevisionTag(tc.input), tc.want, "revision_tag")
		})
	}
}

func TestValidateInstanceID(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  bool
	}{
		{"simple", "web-1", true},
		{"host and port", "10.0.0.1:8080", true},
		{"uppercase and underscore", "Web_1", true},
		{"uuid", "3f2b6c1e-8a7d-4e0f-9b1a-2c3d4e5f6a7b", true},
		{"single character", "x", true},
		{"128 characters", strings.Repeat("i", 128), true},
		{"empty", "", false},
		{"129 characters", strings.Repeat("i", 129), false},
		{"leading dash", "-web", false},
		{"leading underscore", "_web", false},
		{"leading dot", ".web", false},
		{"leading colon", ":8080", false},
		{"slash", "web/1", false},
		{"plus", "web+1", false},
		{"space", "web 1", false},
		{"non-ASCII", "w\u00e9b", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkValid(t, registry.ValidateInstanceID(tc.input), tc.want, "id")
		})
	}
}

func TestErrorsUnwrap(t *testing.T) {
	tests := []struct {
		name string
		err  error
		is   error
		text string
	}{
		{"field error", registry.Invalid("port", "%d is out of range", 70000), registry.ErrValidation, "port: 70000 is out of range"},
		{"not found", registry.NotFound("instance %s", "a/b/c"), registry.ErrNotFound, "instance a/b/c not found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !errors.Is(tc.err, tc.is) {
				t.Errorf("errors.Is(%v, %v) = false", tc.err, tc.is)
			}
			if got := tc.err.Error(); got != tc.text {
				t.Errorf("Error() = %q, want %q", got, tc.text)
			}
		})
	}
}
