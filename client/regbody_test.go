package client

import (
	"bytes"
	"encoding/json"
	"math"
	"slices"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/muster-registry/muster/api"
)

// checkRegistrationBody fails unless registrationBody gives json.Marshal's
// bytes for req or leaves req to it, and reports whether it encoded req.
func checkRegistrationBody(t interface {
	Helper()
	Fatalf(string, ...any)
}, req api.RegisterInstanceRequest) bool {
	t.Helper()
	want, err := json.Marshal(req)
	if err != nil {
		t.Fatalf("%+v: %v", req, err)
	}
	got, ok := registrationBody(&req)
	if ok && !bytes.Equal(got, want) {
		t.Fatalf("%+v:\n got %s\nwant %s", req, got, want)
	}
	return ok
}

// The hand-written registration body is encoding/json's, and is written
// for every request whose strings are plain.
func TestRegistrationBodyIsEncodingJSONs(t *testing.T) {
	cases := []struct {
		name string
		req  api.RegisterInstanceRequest
		hand bool
	}{
		{"the bench's request", api.RegisterInstanceRequest{Address: "10.0.0.1", Port: 8080, Tags: []string{"bench"}, HeartbeatTimeout: 120}, true},
		{"empty", api.RegisterInstanceRequest{}, true},
		{"every field", api.RegisterInstanceRequest{
			ID: "i-1", RevisionTag: "1.2.0", Address: "10.0.0.1", Port: 8080, PublicURL: "https://a.example/x?y=1",
			Endpoints: []string{"GET /a", "b"}, Tags: []string{"x", "y"},
			Metadata: map[string]string{"zone": "eu-1", "region": "eu", "a": ""}, HeartbeatTimeout: 30,
		}, true},
		{"id only", api.RegisterInstanceRequest{ID: "a"}, true},
		{"heartbeat timeout only", api.RegisterInstanceRequest{HeartbeatTimeout: 5}, true},
		{"empty list and map", api.RegisterInstanceRequest{Tags: []string{}, Endpoints: []string{}, Metadata: map[string]string{}}, true},
		{"empty strings in a list and a map", api.RegisterInstanceRequest{Tags: []string{"", ""}, Metadata: map[string]string{"": ""}}, true},
		{"negative and huge numbers", api.RegisterInstanceRequest{Port: -1, HeartbeatTimeout: math.MinInt}, true},
		{"HTML characters", api.RegisterInstanceRequest{Address: "a<b"}, false},
		{"ampersand in a tag", api.RegisterInstanceRequest{Tags: []string{"a", "&"}}, false},
		{"quote in a metadata key", api.RegisterInstanceRequest{Metadata: map[string]string{`"`: "v"}}, false},
		{"non-ASCII in a metadata value", api.RegisterInstanceRequest{Metadata: map[string]string{"k": "é"}}, false},
		{"backslash", api.RegisterInstanceRequest{PublicURL: `http://a\b`}, false},
		{"control character", api.RegisterInstanceRequest{Endpoints: []string{"a\tb"}}, false},
		{"invalid UTF-8", api.RegisterInstanceRequest{RevisionTag: "\xff"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if hand := checkRegistrationBody(t, tc.req); hand != tc.hand {
				t.Fatalf("encoded by hand: %v, want %v", hand, tc.hand)
			}
		})
	}
}

// For any request, the hand-written body is encoding/json's, and it is
// written whenever every string is plain.
func TestRegistrationBodyMatchesEncodingJSON(t *testing.T) {
	chars := []string{"a", "Z", "0", "-", ".", " ", "/", "~", "<", ">", "&", `"`, `\`, "\n", "\x7f", "é", "\xff", "\u2028"}
	rapid.Check(t, func(t *rapid.T) {
		odd := rapid.Bool().Draw(t, "odd")
		str := func(label string) string {
			cs := chars[:8]
			if odd && rapid.Bool().Draw(t, label+" odd") {
				cs = chars
			}
			return strings.Join(rapid.SliceOfN(rapid.SampledFrom(cs), 0, 5).Draw(t, label), "")
		}
		strs := func(label string) []string {
			n := rapid.IntRange(-1, 3).Draw(t, label)
			if n < 0 {
				return nil
			}
			l := make([]string, n)
			for i := range l {
				l[i] = str(label)
			}
			return l
		}
		count := rapid.OneOf(rapid.SampledFrom([]int{0, 1, -1, 8080, math.MaxInt, math.MinInt}), rapid.Int())
		req := api.RegisterInstanceRequest{
			ID: str("id"), RevisionTag: str("revision_tag"), Address: str("address"), Port: count.Draw(t, "port"),
			PublicURL: str("public_url"), Endpoints: strs("endpoints"), Tags: strs("tags"), HeartbeatTimeout: count.Draw(t, "timeout"),
		}
		if n := rapid.IntRange(-1, 4).Draw(t, "metadata"); n >= 0 {
			req.Metadata = map[string]string{}
			for range n {
				req.Metadata[str("key")] = str("value")
			}
		}
		// Plain is judged on the request as built: a metadata key drawn
		// twice keeps only its last value.
		plain := true
		check := func(s string) {
			for i := 0; i < len(s); i++ {
				plain = plain && isPlainOut(s[i])
			}
		}
		for _, s := range []string{req.ID, req.RevisionTag, req.Address, req.PublicURL} {
			check(s)
		}
		for _, s := range slices.Concat(req.Endpoints, req.Tags) {
			check(s)
		}
		for k, v := range req.Metadata {
			check(k)
			check(v)
		}
		if hand := checkRegistrationBody(t, req); hand != plain {
			t.Fatalf("%+v: encoded by hand: %v, want %v", req, hand, plain)
		}
	})
}

// BenchmarkRegistrationBody encodes the bench's registration request by
// hand and by encoding/json.
func BenchmarkRegistrationBody(b *testing.B) {
	req := api.RegisterInstanceRequest{Address: "10.0.0.1", Port: 8080, Tags: []string{"bench"}, HeartbeatTimeout: 120}
	b.Run("hand", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := registrationBody(&req); !ok {
				b.Fatal("left to encoding/json")
			}
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(req); err != nil {
				b.Fatal(err)
			}
		}
	})
}
