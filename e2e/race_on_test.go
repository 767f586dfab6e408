//go:build race

package e2e

// raceEnabled reports whether the tests run under -race; the binary is then
// built with -race as well.
const raceEnabled = true
