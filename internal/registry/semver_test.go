package registry_test

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/muster-registry/muster/internal/registry"
)

func TestParseVersion(t *testing.T) {
	tests := []struct {
		name   string
		input  string
		wantOK bool
		want   string // the parsed version, printed
	}{
		{"plain", "1.2.9", true, "1.2.9"},
		{"leading v", "v1.2.9", true, "1.2.9"},
		{"zero", "0.0.0", true, "0.0.0"},
		{"prerelease", "2.0.0-rc.1", true, "2.0.0-rc.1"},
		{"prerelease with v", "v2.0.0-rc.1", true, "2.0.0-rc.1"},
		{"build metadata", "1.0.0+build.5", true, "1.0.0+build.5"},
		{"prerelease and build", "1.0.0-beta.2+exp.sha.5114f85", true, "1.0.0-beta.2+exp.sha.5114f85"},
		{"alphanumeric prerelease starting with a digit", "1.2.3-0a", true, "1.2.3-0a"},
		{"two parts", "1.2", false, ""},
		{"one part", "1", false, ""},
		{"four parts", "1.2.3.4", false, ""},
		{"capital V", "V1.2.3", false, ""},
		{"two vs", "vv1.2.3", false, ""},
		{"only v", "v", false, ""},
		{"leading zero in major", "01.2.3", false, ""},
		{"leading zero in numeric prerelease", "1.2.3-01", false, ""},
		{"empty prerelease", "1.2.3-", false, ""},
		{"empty build", "1.2.3+", false, ""},
		{"empty prerelease identifier", "1.2.3-rc..1", false, ""},
		{"underscore in prerelease", "1.2.3-alpha_beta", false, ""},
		{"word", "latest", false, ""},
		{"date", "2024-01-05", false, ""},
		{"leading space", " 1.2.3", false, ""},
		{"empty", "", false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, ok := registry.ParseVersion(tc.input)
			if ok != tc.wantOK {
				t.Fatalf("ParseVersion(%q) ok = %v, want %v", tc.input, ok, tc.wantOK)
			}
			if !ok {
				if v != nil {
					t.Fatalf("ParseVersion(%q) = %v with ok false, want nil", tc.input, v)
				}
				return
			}
			if got := v.String(); got != tc.want {
				t.Fatalf("ParseVersion(%q) = %s, want %s", tc.input, got, tc.want)
			}
		})
	}
}

func TestCompareTags(t *testing.T) {
	tests := []struct {
		name string
		a, b string
		want int // sign: negative when a lists before b
	}{
		{"numeric not lexical minor", "1.10.0", "1.9.0", -1},
		{"numeric not lexical patch", "1.2.10", "1.2.9", -1},
		{"numeric major", "10.0.0", "9.9.9", -1},
		{"release before its prerelease", "2.0.0", "2.0.0-rc.1", -1},
		{"prerelease after release", "2.0.0-rc.1", "2.0.0", 1},
		{"prerelease of next major before older release", "2.0.0-rc.1", "1.99.0", -1},
		{"numeric prerelease identifiers compare numerically", "1.0.0-beta.11", "1.0.0-beta.2", -1},
		{"rc after beta", "1.0.0-rc.1", "1.0.0-beta.11", -1},
		{"leading v counts as semver", "v2.0.0", "1.10.0", -1},
		{"equal precedence broken by tag", "1.0.0", "v1.0.0", -1},
		{"build metadata is not precedence", "1.0.0", "1.0.0+build", -1},
		{"semver before non-semver", "0.0.1", "latest", -1},
		{"non-semver after semver", "latest", "0.0.1", 1},
		{"not-quite semver is not semver", "1.2", "0.0.1", 1},
		{"non-semver by tag", "latest", "main", -1},
		{"equal", "1.2.9", "1.2.9", 0},
		{"equal non-semver", "main", "main", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := registry.CompareTags(tc.a, tc.b)
			if sign(got) != tc.want {
				t.Fatalf("CompareTags(%q, %q) = %d, want sign %d", tc.a, tc.b, got, tc.want)
			}
			if back := registry.CompareTags(tc.b, tc.a); sign(back) != -tc.want {
				t.Fatalf("CompareTags(%q, %q) = %d, not the opposite of %d", tc.b, tc.a, back, got)
			}
		})
	}
}

func TestCompareTagsSortsAListNewestFirst(t *testing.T) {
	// The order of semver 2.0 §11's example, reversed, then the non-semver tags.
	want := []string{
		"2.0.0", "v2.0.0", "2.0.0-rc.1", "1.10.0", "1.9.0",
		"1.0.0", "1.0.0-rc.1", "1.0.0-beta.11", "1.0.0-beta.2", "1.0.0-beta",
		"1.0.0-alpha.beta", "1.0.0-alpha.1", "1.0.0-alpha",
		"1.2", "latest", "main",
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		got := slices.Clone(want)
		r.Shuffle(len(got), func(i, j int) { got[i], got[j] = got[j], got[i] })
		slices.SortFunc(got, registry.CompareTags)
		if !slices.Equal(got, want) {
			t.Fatalf("sorted:\n got %q\nwant %q", got, want)
		}
	}
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}

func TestGreatestVersion(t *testing.T) {
	tests := []struct {
		name   string
		input  []string
		want   string
		wantOK bool
	}{
		{"none", nil, "", false},
		{"only non-semver", []string{"latest", "main", "1.2"}, "", false},
		{"one", []string{"1.2.9"}, "1.2.9", true},
		{"numeric order", []string{"1.9.0", "1.10.0", "1.2.9"}, "1.10.0", true},
		{"release beats its prerelease", []string{"2.0.0-rc.1", "2.0.0", "1.10.0"}, "2.0.0", true},
		{"prerelease beats older release", []string{"1.10.0", "2.0.0-rc.1"}, "2.0.0-rc.1", true},
		{"leading v", []string{"v2.0.0", "1.10.0"}, "v2.0.0", true},
		{"non-semver ignored", []string{"latest", "1.0.0", "zzz"}, "1.0.0", true},
		{"tie goes to smallest tag", []string{"v1.0.0", "1.0.0+build", "1.0.0"}, "1.0.0", true},
		{"tie goes to smallest tag in any order", []string{"1.0.0", "1.0.0+build", "v1.0.0"}, "1.0.0", true},
		{"tie of v and build", []string{"v1.0.0", "1.0.0+b"}, "1.0.0+b", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := registry.GreatestVersion(tc.input)
			if got != tc.want || ok != tc.wantOK {
				t.Fatalf("GreatestVersion(%q) = %q, %v; want %q, %v", tc.input, got, ok, tc.want, tc.wantOK)
			}
		})
	}
}

func TestBecomesDefault(t *testing.T) {
	yes, no := true, false
	tests := []struct {
		name     string
		tag      string
		others   []string
		explicit *bool
		want     bool
	}{
		{"explicit true on non-semver", "latest", []string{"9.9.9"}, &yes, true},
		{"explicit true on older version", "1.0.0", []string{"2.0.0"}, &yes, true},
		{"explicit false on greatest", "3.0.0", []string{"2.0.0"}, &no, false},
		{"explicit false on first", "1.0.0", nil, &no, false},
		{"first semver", "1.0.0", nil, nil, true},
		{"first semver among non-semver", "0.1.0", []string{"latest", "main"}, nil, true},
		{"greater", "1.10.0", []string{"1.9.0", "1.2.9"}, nil, true},
		{"smaller", "1.9.0", []string{"1.10.0"}, nil, false},
		{"release over its prerelease", "2.0.0", []string{"2.0.0-rc.1"}, nil, true},
		{"prerelease under its release", "2.0.0-rc.1", []string{"2.0.0"}, nil, false},
		{"prerelease over older release", "2.0.0-rc.1", []string{"1.10.0"}, nil, true},
		{"equal precedence with v is not greater", "v1.0.0", []string{"1.0.0"}, nil, false},
		{"equal precedence with build is not greater", "1.0.0+build", []string{"1.0.0"}, nil, false},
		{"the tag itself in others is ignored", "1.0.0", []string{"1.0.0", "0.9.0"}, nil, true},
		{"non-semver never", "latest", nil, nil, false},
		{"not-quite semver never", "1.2", []string{"latest"}, nil, false},
		{"non-semver others do not count", "0.0.1", []string{"zzz", "main"}, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := registry.BecomesDefault(tc.tag, tc.others, tc.explicit); got != tc.want {
				t.Fatalf("BecomesDefault(%q, %q, %v) = %v, want %v", tc.tag, tc.others, tc.explicit, got, tc.want)
			}
		})
	}
}
