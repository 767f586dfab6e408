package httpapi

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/muster-registry/muster/api"
)

// TestInstanceListEncoding holds the hand-written encoder to the bytes
// writeJSON (encoding/json, HTML unescaped) writes for the same list.
func TestInstanceListEncoding(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 890_000_000, time.UTC)
	next := "aS0wMDAwMg"
	odd := "a\"b\\c\n\t\x01<>&é\u2028\xff"
	cases := []struct {
		name string
		list api.List[api.Instance]
	}{
		{"empty", list[api.Instance](nil, 100, nil)},
		{"nil values", api.List[api.Instance]{}},
		{"plain", list([]api.Instance{{
			Namespace: "prod", Service: "billing", ID: "i-1", RevisionTag: "1.2.0", Address: "10.0.0.1", Port: 8080,
			PublicURL: "https://x.example/a?b=1&c=<2>", Endpoints: []string{"/a", "/b"}, Tags: []string{}, Metadata: map[string]string{},
			HeartbeatTimeout: 30, Status: api.StatusPassing, RegisteredAt: at, LastHeartbeatAt: at.Add(time.Second), ExpiresAt: at.Add(31 * time.Second),
		}}, 1, &next)},
		{"odd strings, nil fields, other zones", list([]api.Instance{
			{Namespace: odd, Service: odd, ID: odd, Tags: []string{odd, ""}, Metadata: map[string]string{"z": odd, odd: "1", "a": "", "B": "x"},
				Port: -1, Status: api.StatusCritical, RegisteredAt: at.In(time.FixedZone("x", 3600)), LastHeartbeatAt: at.Add(123 * time.Nanosecond)},
			{ID: "i-2"},
		}, 2, nil)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var want bytes.Buffer
			enc := json.NewEncoder(&want)
			enc.SetEscapeHTML(false)
			if err := enc.Encode(tc.list); err != nil {
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
	for _, reg := range []api.Registration{
		{},
		{Instance: api.Instance{Namespace: "prod", Service: "billing", ID: "i-1", Port: 8080, Tags: []string{"a"},
			Metadata: map[string]string{"k": odd}, HeartbeatTimeout: 30, Status: api.StatusPassing,
			RegisteredAt: at, LastHeartbeatAt: at, ExpiresAt: at.Add(30 * time.Second)}, Token: "tok_" + odd},
	} {
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(reg); err != nil {
			t.Fatal(err)
		}
		got, ok := appendRegistration(nil, &reg)
		if !ok || !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("ok %v\n got %s\nwant %s", ok, got, want.Bytes())
		}
	}
	if _, ok := appendRegistration(nil, &api.Registration{Instance: api.Instance{ExpiresAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}}); ok {
		t.Fatal("year 10000 encoded")
	}
}

// A time encoding/json refuses makes the encoder give up, so the answer
// falls back to encoding/json.
func TestInstanceListEncodingRefusesBadTime(t *testing.T) {
	l := list([]api.Instance{{ExpiresAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}}, 1, nil)
	if _, ok := appendInstanceList(nil, l); ok {
		t.Fatal("year 10000 encoded")
	}
}
