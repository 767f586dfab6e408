package main

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/muster-registry/muster/api"
)

// allPages follows markers to the end and stops at the first error.
func TestAllPages(t *testing.T) {
	pages := map[string]api.List[int]{
		"":   {Values: []int{1, 2}, Metadata: api.ListMetadata{NextMarker: ptr("m1")}},
		"m1": {Values: []int{3}, Metadata: api.ListMetadata{NextMarker: ptr("m2")}},
		"m2": {Values: []int{4, 5}},
	}
	var asked []string
	got, err := allPages(func(marker string) (api.List[int], error) {
		asked = append(asked, marker)
		return pages[marker], nil
	})
	if err != nil || !slices.Equal(got, []int{1, 2, 3, 4, 5}) || !slices.Equal(asked, []string{"", "m1", "m2"}) {
		t.Fatalf("got %v, asked %q, %v", got, asked, err)
	}
	boom := errors.New("boom")
	if _, err := allPages(func(marker string) (api.List[int], error) {
		if marker == "m1" {
			return api.List[int]{}, boom
		}
		return pages[marker], nil
	}); !errors.Is(err, boom) {
		t.Fatalf("error on the second page = %v", err)
	}
	// A server that answers the same marker again would make the loop
	// endless: it is an error instead.
	calls := 0
	if _, err := allPages(func(marker string) (api.List[int], error) {
		if calls++; calls > 3 {
			t.Fatal("allPages kept asking")
		}
		return api.List[int]{Values: []int{1}, Metadata: api.ListMetadata{NextMarker: ptr("m1")}}, nil
	}); err == nil || !strings.Contains(err.Error(), "same page marker") {
		t.Fatalf("a repeated marker: %v", err)
	}
}

func ptr(s string) *string { return &s }
