package registry_test

import (
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/muster-registry/muster/api"
	"github.com/muster-registry/muster/internal/registry"
)

func TestBuildURLMap(t *testing.T) {
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	tests := []struct {
		name          string
		input         []registry.URLClaim
		want          map[string]string
		wantConflicts []api.URLMapConflict
	}{
		{"no claims", nil, map[string]string{}, []api.URLMapConflict{}},
		{
			"one claim",
			[]registry.URLClaim{{Resource: "users", PublicURL: "https://a", Instance: "ns/a/1", RegisteredAt: at(0)}},
			map[string]string{"users": "https://a"},
			[]api.URLMapConflict{},
		},
		{
			"same URL twice is not a conflict",
			[]registry.URLClaim{
				{Resource: "users", PublicURL: "https://a", Instance: "ns/a/1", RegisteredAt: at(0)},
				{Resource: "users", PublicURL: "https://a", Instance: "ns/a/2", RegisteredAt: at(1)},
			},
			map[string]string{"users": "https://a"},
			[]api.URLMapConflict{},
		},
		{
			"default revision wins over an older registration",
			[]registry.URLClaim{
				{Resource: "users", PublicURL: "https://old", Instance: "ns/a/1", RegisteredAt: at(0)},
				{Resource: "users", PublicURL: "https://new", Instance: "ns/a/2", RegisteredAt: at(9), DefaultRevision: true},
			},
			map[string]string{"users": "https://new"},
			[]api.URLMapConflict{{Resource: "users", Chosen: "https://new", ChosenFrom: "ns/a/2", Candidates: []string{"https://new", "https://old"}}},
		},
		{
			"then the oldest registration",
			[]registry.URLClaim{
				{Resource: "users", PublicURL: "https://b", Instance: "ns/a/1", RegisteredAt: at(5)},
				{Resource: "users", PublicURL: "https://c", Instance: "ns/b/1", RegisteredAt: at(2)},
				{Resource: "users", PublicURL: "https://a", Instance: "ns/c/1", RegisteredAt: at(7)},
			},
			map[string]string{"users": "https://c"},
			[]api.URLMapConflict{{Resource: "users", Chosen: "https://c", ChosenFrom: "ns/b/1", Candidates: []string{"https://a", "https://b", "https://c"}}},
		},
		{
			"oldest among default revisions",
			[]registry.URLClaim{
				{Resource: "users", PublicURL: "https://x", Instance: "ns/a/1", RegisteredAt: at(5), DefaultRevision: true},
				{Resource: "users", PublicURL: "https://y", Instance: "ns/b/1", RegisteredAt: at(3), DefaultRevision: true},
				{Resource: "users", PublicURL: "https://z", Instance: "ns/c/1", RegisteredAt: at(1)},
			},
			map[string]string{"users": "https://y"},
			[]api.URLMapConflict{{Resource: "users", Chosen: "https://y", ChosenFrom: "ns/b/1", Candidates: []string{"https://x", "https://y", "https://z"}}},
		},
		{
			"then the smallest instance name",
			[]registry.URLClaim{
				{Resource: "users", PublicURL: "https://2", Instance: "ns/a/web-2", RegisteredAt: at(1)},
				{Resource: "users", PublicURL: "https://1", Instance: "ns/a/web-10", RegisteredAt: at(1)},
			},
			map[string]string{"users": "https://1"},
			[]api.URLMapConflict{{Resource: "users", Chosen: "https://1", ChosenFrom: "ns/a/web-10", Candidates: []string{"https://1", "https://2"}}},
		},
		{
			"conflicts sorted by resource, candidates deduplicated",
			[]registry.URLClaim{
				{Resource: "users", PublicURL: "https://u1", Instance: "ns/u/1", RegisteredAt: at(1)},
				{Resource: "users", PublicURL: "https://u2", Instance: "ns/u/2", RegisteredAt: at(2)},
				{Resource: "users", PublicURL: "https://u2", Instance: "ns/u/3", RegisteredAt: at(3)},
				{Resource: "orders", PublicURL: "https://o2", Instance: "ns/o/2", RegisteredAt: at(1), DefaultRevision: true},
				{Resource: "orders", PublicURL: "https://o1", Instance: "ns/o/1", RegisteredAt: at(0)},
				{Resource: "carts", PublicURL: "https://c", Instance: "ns/c/1", RegisteredAt: at(0)},
				{Resource: "auth", PublicURL: "https://a2", Instance: "ns/a/2", RegisteredAt: at(4)},
				{Resource: "auth", PublicURL: "https://a1", Instance: "ns/a/1", RegisteredAt: at(4)},
			},
			map[string]string{"users": "https://u1", "orders": "https://o2", "carts": "https://c", "auth": "https://a1"},
			[]api.URLMapConflict{
				{Resource: "auth", Chosen: "https://a1", ChosenFrom: "ns/a/1", Candidates: []string{"https://a1", "https://a2"}},
				{Resource: "orders", Chosen: "https://o2", ChosenFrom: "ns/o/2", Candidates: []string{"https://o1", "https://o2"}},
				{Resource: "users", Chosen: "https://u1", ChosenFrom: "ns/u/1", Candidates: []string{"https://u1", "https://u2"}},
			},
		},
	}
	r := rand.New(rand.NewPCG(3, 4))
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// The answer must not depend on the order the claims come in.
			for i := range 25 {
				claims := slices.Clone(tc.input)
				if i > 0 {
					r.Shuffle(len(claims), func(i, j int) { claims[i], claims[j] = claims[j], claims[i] })
				} else {
					slices.Reverse(claims)
				}
				got, conflicts := registry.BuildURLMap(claims)
				if !reflect.DeepEqual(got, tc.want) {
					t.Fatalf("order %d: url map = %v, want %v", i, got, tc.want)
				}
				if !reflect.DeepEqual(conflicts, tc.wantConflicts) {
					t.Fatalf("order %d: conflicts = %+v, want %+v", i, conflicts, tc.wantConflicts)
				}
			}
		})
	}
}
