package client

import (
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/muster-registry/muster/api"
)

// checkSameRegistration holds decodeRegistration to encoding/json on body,
// as checkSame does for lists, and reports whether the fast path answered.
func checkSameRegistration(t tb, body string) bool {
	t.Helper()
	return agreesWithJSON(t, body, decodeRegistration)
}

func encodeRegistration(t tb, r api.Registration) string { return encodeCompact(t, r) }

func TestDecodeRegistration(t *testing.T) {
	plain := encodeRegistration(t, api.Registration{Instance: sampleList().Values[0], Token: "tok-1"})
	cases := []struct {
		name string
		body string
		fast bool
	}{
		{"server shape", plain, true},
		{"zero", encodeRegistration(t, api.Registration{}), true},
		{"escaped token", strings.Replace(plain, `"tok-1"`, `"tok\u002d1"`, 1), false},
		{"no token", strings.Replace(plain, `,"token":"tok-1"`, ``, 1), false},
		{"field after the token", strings.Replace(plain, `"tok-1"}`, `"tok-1","x":1}`, 1), false},
		{"null token", strings.Replace(plain, `"tok-1"`, `null`, 1), false},
		{"trailing garbage", plain + "{}", false},
		{"truncated", plain[:len(plain)-4], false},
		{"a list", encodeList(t, sampleList()), false},
		{"empty", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := checkSameRegistration(t, tc.body); got != tc.fast {
				t.Fatalf("fast path answered %v, want %v, on\n%s", got, tc.fast, tc.body)
			}
		})
	}
}

// Any registration the server can write is read by the fast path, into
// what encoding/json reads.
func TestDecodeRegistrationProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		inst := sampleList().Values[rapid.IntRange(0, 1).Draw(t, "which")]
		inst.ID = rapid.StringMatching(`[a-z0-9-]{0,12}`).Draw(t, "id")
		inst.Tags = rapid.SliceOfN(rapid.StringMatching(`[a-z]{0,4}`), 0, 3).Draw(t, "tags")
		r := api.Registration{Instance: inst, Token: rapid.StringMatching(`[A-Za-z0-9_-]{0,40}`).Draw(t, "token")}
		if !checkSameRegistration(t, encodeRegistration(t, r)) {
			t.Fatalf("fast path refused the server's shape")
		}
	})
}

// FuzzDecodeRegistration: on any input, the fast path either answers what
// encoding/json answers or leaves the body to it. `go test` runs the seeds.
func FuzzDecodeRegistration(f *testing.F) {
	plain := encodeRegistration(f, api.Registration{Instance: sampleList().Values[0], Token: "tok-1"})
	f.Add(plain)
	f.Add(encodeRegistration(f, api.Registration{}))
	f.Add(strings.Replace(plain, `"token":"tok-1"`, `"token":""`, 1))
	f.Add(strings.Replace(plain, `"tok-1"`, `"tok\"1"`, 1))
	f.Add(plain[:len(plain)-3])
	f.Add("")
	f.Fuzz(func(t *testing.T, body string) {
		checkSameRegistration(t, body)
	})
}
