package httpapi

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/muster-registry/muster/api"
	"github.com/muster-registry/muster/internal/state"
)

// TestInstanceListEncoding holds the hand-written encoder to the bytes
// writeJSON (encoding/json, HTML unescaped) writes for the same list.
func TestInstanceListEncoding(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 890_000_000, time.UTC)
	next := "aS0wMDAwMg"
	odd := "a\"b\\c\n\t\x01<>&é\u2028\xff"
	cases := []struct {
		name string
		list api.List[listed]
	}{
		{"empty", list[listed](nil, 100, nil)},
		{"nil values", api.List[listed]{}},
		{"plain", list([]listed{{Instance: api.Instance{
			Namespace: "prod", Service: "billing", ID: "i-1", RevisionTag: "1.2.0", Address: "10.0.0.1", Port: 8080,
			PublicURL: "https://x.example/a?b=1&c=<2>", Endpoints: []string{"/a", "/b"}, Tags: []string{},
			HeartbeatTimeout: 30, Status: api.StatusPassing, RegisteredAt: at, LastHeartbeatAt: at.Add(time.Second), ExpiresAt: at.Add(31 * time.Second),
		}, md: state.Metadata{}}}, 1, &next)},
		{"odd strings, nil fields, other zones", list([]listed{
			{Instance: api.Instance{Namespace: odd, Service: odd, ID: odd, Tags: []string{odd, ""},
				Port: -1, Status: api.StatusCritical, RegisteredAt: at.In(time.FixedZone("x", 3600)), LastHeartbeatAt: at.Add(123 * time.Nanosecond)},
				md: state.MetadataOf(map[string]string{"z": odd, odd: "1", "a": "", "B": "x", "<&>": "\u2029"})},
			{Instance: api.Instance{ID: "i-2"}},
		}, 2, nil)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// The wire form, as writeJSON would encode it.
			wire := api.List[api.Instance]{Metadata: tc.list.Metadata}
			if tc.list.Values != nil {
				wire.Values = []api.Instance{}
			}
			for i := range tc.list.Values {
				wire.Values = append(wire.Values, tc.list.Values[i].wire())
			}
			var want bytes.Buffer
			enc := json.NewEncoder(&want)
			enc.SetEscapeHTML(false)
			if err := enc.Encode(wire); err != nil {
				t.Fatal(err)
			}
			got, ok := appendInstanceList(nil, tc.list)
			if !ok || !bytes.Equal(got, want.Bytes()) {
				t.Fatalf("ok %v\n got %s\nwant %s", ok, got, want.Bytes())
			}
		})
	}
}

// TestRegistrationEncoding holds the registration answer to encoding/json's
// bytes, the embedded instance's fields followed by the token.
func TestRegistrationEncoding(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 890_000_000, time.UTC)
	odd := "a\"b\\c\n\t\x01<>&é\u2028\xff"
	for _, tc := range []struct {
		inst  listed
		token string
	}{
		{},
		{listed{Instance: api.Instance{Namespace: "prod", Service: "billing", ID: "i-1", Port: 8080, Tags: []string{"a"},
			HeartbeatTimeout: 30, Status: api.StatusPassing, RegisteredAt: at, LastHeartbeatAt: at, ExpiresAt: at.Add(30 * time.Second)},
			md: state.MetadataOf(map[string]string{"k": odd, "a": ""})}, "tok_" + odd},
	} {
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(api.Registration{Instance: tc.inst.wire(), Token: tc.token}); err != nil {
			t.Fatal(err)
		}
		got, ok := appendRegistration(nil, &tc.inst, tc.token)
		if !ok || !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("ok %v\n got %s\nwant %s", ok, got, want.Bytes())
		}
	}
	bad := listed{Instance: api.Instance{ExpiresAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}}
	if _, ok := appendRegistration(nil, &bad, "t"); ok {
		t.Fatal("year 10000 encoded")
	}
}

// A time encoding/json refuses makes the encoder give up, so the answer
// falls back to encoding/json.
func TestInstanceListEncodingRefusesBadTime(t *testing.T) {
	l := list([]listed{{Instance: api.Instance{ExpiresAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}}}, 1, nil)
	if _, ok := appendInstanceList(nil, l); ok {
		t.Fatal("year 10000 encoded")
	}
}
