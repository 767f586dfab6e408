package registry

import (
	"regexp"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// TestNameMatchers holds each hand-written matcher to the pattern it
// implements, on random strings drawn mostly from the characters that
// matter at the edges of the rules.
func TestNameMatchers(t *testing.T) {
	tests := []struct {
		name    string
		pattern string
		match   func(string) bool
	}{
		{"label", `^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`, isLabel},
		{"revision tag", `^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,127}$`, isTag},
		{"instance id", `^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$`, isInstanceID},
	}
	// Each string is drawn from one alphabet: mostly characters some rule
	// admits, so that long valid names (and their off-by-one neighbours)
	// come up, and sometimes anything.
	alphabets := [][]rune{[]rune("az09-"), []rune("aZz09-_.:+"), []rune("aZz09-_.:+/ \n\x00é~")}
	for _, tt := range tests {
		re := regexp.MustCompile(tt.pattern)
		t.Run(tt.name, func(t *testing.T) {
			// Every byte at the first, a middle and the last position of
			// names of the lengths around each rule's limits.
			for _, n := range []int{1, 2, 3, 62, 63, 64, 127, 128, 129} {
				for _, at := range []int{0, n / 2, n - 1} {
					for c := range 256 {
						b := []byte(strings.Repeat("a", n))
						b[at] = byte(c)
						if got, want := tt.match(string(b)), re.Match(b); got != want {
							t.Fatalf("%s(%q) = %v, the pattern says %v", tt.name, b, got, want)
						}
					}
				}
			}
			rapid.Check(t, func(t *rapid.T) {
				n := rapid.IntRange(0, 140).Draw(t, "len")
				alphabet := rapid.SampledFrom(alphabets).Draw(t, "alphabet")
				rs := rapid.SliceOfN(rapid.SampledFrom(alphabet), n, n).Draw(t, "runes")
				s := string(rs)
				if got, want := tt.match(s), re.MatchString(s); got != want {
					t.Fatalf("%s(%q) = %v, the pattern says %v", tt.name, s, got, want)
				}
			})
		})
	}
}
