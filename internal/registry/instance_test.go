package registry_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/muster-registry/muster/api"
	"github.com/muster-registry/muster/internal/registry"
)

func strs(n int, f func(i int) string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = f(i)
	}
	return out
}

func pairs(n int) map[string]string {
	md := make(map[string]string, n)
	for i := range n {
		md[fmt.Sprintf("k%d", i)] = "v"
	}
	return md
}

func TestValidateRegistration(t *testing.T) {
	tests := []struct {
		name        string
		input       api.RegisterInstanceRequest
		wantField   string // "" when valid
		wantTimeout int    // HeartbeatTimeout after a valid call
	}{
		{"empty body gets the default timeout", api.RegisterInstanceRequest{}, "", api.DefaultHeartbeatTimeout},
		{"default timeout is 30", api.RegisterInstanceRequest{Address: "10.0.0.1", Port: 8080}, "", 30},
		{"timeout 3", api.RegisterInstanceRequest{HeartbeatTimeout: 3}, "", 3},
		{"timeout 120", api.RegisterInstanceRequest{HeartbeatTimeout: 120}, "", 120},
		{"timeout 2", api.RegisterInstanceRequest{HeartbeatTimeout: 2}, "heartbeat_timeout", 0},
		{"timeout 121", api.RegisterInstanceRequest{HeartbeatTimeout: 121}, "heartbeat_timeout", 0},
		{"negative timeout", api.RegisterInstanceRequest{HeartbeatTimeout: -5}, "heartbeat_timeout", 0},
		{"full valid body", api.RegisterInstanceRequest{
			ID: "web-1", RevisionTag: "1.2.9", Address: "web-1.internal", Port: 443,
			PublicURL: "https://api.example.com/users", Endpoints: []string{"users", "orders"},
			Tags: []string{"eu", "canary"}, Metadata: map[string]string{"zone": "a"}, HeartbeatTimeout: 10,
		}, "", 10},
		{"bad id", api.RegisterInstanceRequest{ID: "-web"}, "id", 0},
		{"bad revision tag", api.RegisterInstanceRequest{RevisionTag: ".x"}, "revision_tag", 0},
		{"IPv6 address", api.RegisterInstanceRequest{Address: "fd00::1"}, "", 30},
		{"address with space", api.RegisterInstanceRequest{Address: "web 1"}, "address", 0},
		{"address with slash", api.RegisterInstanceRequest{Address: "http://web"}, "address", 0},
		{"address of 255", api.RegisterInstanceRequest{Address: strings.Repeat("a", 255)}, "", 30},
		{"address of 256", api.RegisterInstanceRequest{Address: strings.Repeat("a", 256)}, "address", 0},
		{"address not UTF-8", api.RegisterInstanceRequest{Address: "\xff"}, "address", 0},
		{"port 0", api.RegisterInstanceRequest{Port: 0}, "", 30},
		{"port 65535", api.RegisterInstanceRequest{Port: 65535}, "", 30},
		{"port 65536", api.RegisterInstanceRequest{Port: 65536}, "port", 0},
		{"port -1", api.RegisterInstanceRequest{Port: -1}, "port", 0},
		{"public url http", api.RegisterInstanceRequest{PublicURL: "http://example.com"}, "", 30},
		{"public url https with port and path", api.RegisterInstanceRequest{PublicURL: "https://example.com:8443/a/b?c=d"}, "", 30},
		{"public url ftp", api.RegisterInstanceRequest{PublicURL: "ftp://example.com"}, "public_url", 0},
		{"public url relative", api.RegisterInstanceRequest{PublicURL: "/users"}, "public_url", 0},
		{"public url without scheme", api.RegisterInstanceRequest{PublicURL: "example.com/users"}, "public_url", 0},
		{"public url without host", api.RegisterInstanceRequest{PublicURL: "http:///users"}, "public_url", 0},
		{"public url unparsable", api.RegisterInstanceRequest{PublicURL: "http://[::1"}, "public_url", 0},
		{"public url too long", api.RegisterInstanceRequest{PublicURL: "https://example.com/" + strings.Repeat("a", api.MaxPublicURLLen)}, "public_url", 0},
		{"32 tags", api.RegisterInstanceRequest{Tags: strs(32, func(i int) string { return fmt.Sprint("t", i) })}, "", 30},
		{"33 tags", api.RegisterInstanceRequest{Tags: strs(33, func(i int) string { return fmt.Sprint("t", i) })}, "tags", 0},
		{"tag of 64", api.RegisterInstanceRequest{Tags: []string{strings.Repeat("t", 64)}}, "", 30},
		{"tag of 65", api.RegisterInstanceRequest{Tags: []string{strings.Repeat("t", 65)}}, "tags", 0},
		{"empty tag", api.RegisterInstanceRequest{Tags: []string{"a", ""}}, "tags", 0},
		{"duplicate tag", api.RegisterInstanceRequest{Tags: []string{"a", "b", "a"}}, "tags", 0},
		{"tag not UTF-8", api.RegisterInstanceRequest{Tags: []string{"\xc3"}}, "tags", 0},
		{"64 metadata pairs", api.RegisterInstanceRequest{Metadata: pairs(64)}, "", 30},
		{"65 metadata pairs", api.RegisterInstanceRequest{Metadata: pairs(65)}, "metadata", 0},
		{"metadata key of 128", api.RegisterInstanceRequest{Metadata: map[string]string{strings.Repeat("k", 128): ""}}, "", 30},
		{"metadata key of 129", api.RegisterInstanceRequest{Metadata: map[string]string{strings.Repeat("k", 129): ""}}, "metadata", 0},
		{"empty metadata key", api.RegisterInstanceRequest{Metadata: map[string]string{"": "v"}}, "metadata", 0},
		{"metadata value of 1024", api.RegisterInstanceRequest{Metadata: map[string]string{"k": strings.Repeat("v", 1024)}}, "", 30},
		{"metadata value of 1025", api.RegisterInstanceRequest{Metadata: map[string]string{"k": strings.Repeat("v", 1025)}}, "metadata", 0},
		{"metadata value not UTF-8", api.RegisterInstanceRequest{Metadata: map[string]string{"k": "\xff"}}, "metadata", 0},
		{"256 endpoints", api.RegisterInstanceRequest{Endpoints: strs(256, func(i int) string { return fmt.Sprint("e", i) })}, "", 30},
		{"257 endpoints", api.RegisterInstanceRequest{Endpoints: strs(257, func(i int) string { return fmt.Sprint("e", i) })}, "endpoints", 0},
		{"duplicate endpoint", api.RegisterInstanceRequest{Endpoints: []string{"users", "users"}}, "endpoints", 0},
		{"empty endpoint", api.RegisterInstanceRequest{Endpoints: []string{""}}, "endpoints", 0},
		{"endpoint with space", api.RegisterInstanceRequest{Endpoints: []string{"my users"}}, "endpoints", 0},
		{"endpoint of 256", api.RegisterInstanceRequest{Endpoints: []string{strings.Repeat("e", 256)}}, "", 30},
		{"endpoint of 257", api.RegisterInstanceRequest{Endpoints: []string{strings.Repeat("e", 257)}}, "endpoints", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.input
			err := registry.ValidateRegistration(&r)
			checkValid(t, err, tc.wantField == "", tc.wantField)
			if err == nil && r.HeartbeatTimeout != tc.wantTimeout {
				t.Fatalf("HeartbeatTimeout = %d after validation, want %d", r.HeartbeatTimeout, tc.wantTimeout)
			}
		})
	}
}

func TestValidatePatch(t *testing.T) {
	timeout := func(n int) *int { return &n }
	list := func(s ...string) *[]string { return &s }
	url := func(s string) *string { return &s }
	md := func(m map[string]string) *map[string]string { return &m }
	tests := []struct {
		name      string
		input     api.PatchInstanceRequest
		wantField string
	}{
		{"nothing", api.PatchInstanceRequest{}, ""},
		{"clearing lists and maps", api.PatchInstanceRequest{Tags: list(), Endpoints: list(), Metadata: md(map[string]string{}), PublicURL: url("")}, ""},
		{"timeout 3", api.PatchInstanceRequest{HeartbeatTimeout: timeout(3)}, ""},
		{"timeout 120", api.PatchInstanceRequest{HeartbeatTimeout: timeout(120)}, ""},
		{"timeout 0 is not defaulted in a patch", api.PatchInstanceRequest{HeartbeatTimeout: timeout(0)}, "heartbeat_timeout"},
		{"timeout 121", api.PatchInstanceRequest{HeartbeatTimeout: timeout(121)}, "heartbeat_timeout"},
		{"33 tags", api.PatchInstanceRequest{Tags: list(strs(33, func(i int) string { return fmt.Sprint(i) })...)}, "tags"},
		{"duplicate tags", api.PatchInstanceRequest{Tags: list("a", "a")}, "tags"},
		{"65 metadata pairs", api.PatchInstanceRequest{Metadata: md(pairs(65))}, "metadata"},
		{"long metadata value", api.PatchInstanceRequest{Metadata: md(map[string]string{"k": strings.Repeat("v", 1025)})}, "metadata"},
		{"257 endpoints", api.PatchInstanceRequest{Endpoints: list(strs(257, func(i int) string { return fmt.Sprint(i) })...)}, "endpoints"},
		{"duplicate endpoints", api.PatchInstanceRequest{Endpoints: list("a", "a")}, "endpoints"},
		{"relative public url", api.PatchInstanceRequest{PublicURL: url("users")}, "public_url"},
		{"good public url", api.PatchInstanceRequest{PublicURL: url("https://example.com")}, ""},
		{"every field valid", api.PatchInstanceRequest{Tags: list("a"), Metadata: md(pairs(2)), Endpoints: list("users"), PublicURL: url("http://x"), HeartbeatTimeout: timeout(60)}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.input
			checkValid(t, registry.ValidatePatch(&p), tc.wantField == "", tc.wantField)
		})
	}
}
