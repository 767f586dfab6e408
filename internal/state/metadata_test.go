package state_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"
	"unsafe"

	"github.com/muster-registry/muster/internal/state"
)

// TestMetadataJSON holds Metadata's JSON to what encoding/json writes for
// the equivalent map, with HTML escaping on (commands, snapshots) and off
// (event payloads), and checks that it reads back.
func TestMetadataJSON(t *testing.T) {
	odd := "a\"b\\c\n\t\x01<>&é\u2028\xff"
	cases := []struct {
		name string
		m    map[string]string
	}{
		{"nil", nil},
		{"empty", map[string]string{}},
		{"plain", map[string]string{"zone": "a", "region": "eu", "host": "n-1"}},
		{"odd", map[string]string{odd: odd, "z": "", "B": "<x>", "a&b": "\u2029"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			md := state.MetadataOf(tc.m)
			for _, escapeHTML := range []bool{true, false} {
				var want, got bytes.Buffer
				for buf, v := range map[*bytes.Buffer]any{&want: tc.m, &got: md} {
					enc := json.NewEncoder(buf)
					enc.SetEscapeHTML(escapeHTML)
					if err := enc.Encode(v); err != nil {
						t.Fatal(err)
					}
				}
				if !bytes.Equal(got.Bytes(), want.Bytes()) {
					t.Errorf("escapeHTML %v:\n got %s\nwant %s", escapeHTML, got.Bytes(), want.Bytes())
				}
			}
			b, err := json.Marshal(md)
			if err != nil {
				t.Fatal(err)
			}
			var back state.Metadata
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			// Invalid UTF-8 reads back as U+FFFD, as it would through a map.
			var viaMap map[string]string
			if err := json.Unmarshal(b, &viaMap); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back, state.MetadataOf(viaMap)) || !reflect.DeepEqual(back.Map(), viaMap) {
				t.Errorf("read back %v, want %v", back, viaMap)
			}
		})
	}
}

func TestMetadataGet(t *testing.T) {
	md := state.MetadataOf(map[string]string{"b": "2", "a": "1", "c": ""})
	for _, tc := range []struct {
		key, want string
		ok        bool
	}{{"a", "1", true}, {"b", "2", true}, {"c", "", true}, {"d", "", false}, {"", "", false}} {
		if got, ok := md.Get(tc.key); got != tc.want || ok != tc.ok {
			t.Errorf("Get(%q) = %q, %v; want %q, %v", tc.key, got, ok, tc.want, tc.ok)
		}
	}
}

// TestStoredStringsShared checks that two registrations with equal names,
// tags and metadata share one copy of each string and one tag list, and
// that sharing changes no value.
func TestStoredStringsShared(t *testing.T) {
	s := state.New(0, nil)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	mk := func(id string) *state.Instance {
		// Fresh copies of every string, as a decoded command has.
		c := func(s string) string { return string([]byte(s)) }
		return &state.Instance{
			Namespace: c("ns"), Service: c("svc"), ID: id, RevisionTag: c("1.0.0"),
			Tags: []string{c("http"), c("zone-a")}, HeartbeatTimeout: 30, Token: "t",
			Metadata: state.MetadataOf(map[string]string{c("region"): c("eu-west-1")}),
		}
	}
	a, b := mk("a"), mk("b")
	for i, inst := range []*state.Instance{a, b} {
		inst.RegIndex = uint64(i + 1)
		if _, err := s.RegisterInstance(now, inst, false); err != nil {
			t.Fatal(err)
		}
	}
	same := func(x, y string) bool { return x == y && unsafe.StringData(x) == unsafe.StringData(y) }
	if !same(a.Namespace, b.Namespace) || !same(a.Service, b.Service) || !same(a.RevisionTag, b.RevisionTag) {
		t.Error("names not shared")
	}
	if &a.Tags[0] != &b.Tags[0] || !reflect.DeepEqual(b.Tags, []string{"http", "zone-a"}) {
		t.Errorf("tag lists not shared: %v %v", a.Tags, b.Tags)
	}
	if !same(a.Metadata[0].Key, b.Metadata[0].Key) || !same(a.Metadata[0].Value, b.Metadata[0].Value) {
		t.Error("metadata strings not shared")
	}
	got, _, err := s.Instance(b.Key())
	if err != nil || got.Metadata[0] != (state.Pair{Key: "region", Value: "eu-west-1"}) {
		t.Errorf("stored %+v, %v", got, err)
	}
}

// TestInstanceRecordSize guards the size of the stored record, of which a
// server holds one per instance: 224 bytes is the allocator's size class
// below the 240 it took with int fields for the port and timeout.
func TestInstanceRecordSize(t *testing.T) {
	if n := unsafe.Sizeof(state.Instance{}); n > 224 {
		t.Fatalf("state.Instance is %d bytes, more than 224", n)
	}
}
