// Package e2e is Muster's end-to-end suite: it builds the muster binary once
// (TestMain), starts it as an operator would (muster serve with flags, JSON
// logs on stderr) and speaks to it over HTTP with net/http alone, so the
// suite tests the documented contract (DESIGN.md §2), not the Go SDK.
//
// Run it with the rest of the tests:
//
//	go test -race ./e2e/
//
// Under -race the binary is built with -race too, so a data race in the
// server makes it exit non-zero and the test that stops it fails.
//
// One case needs a Raft snapshot, which the server takes only on raft's
// snapshot interval (two to four minutes); it runs only when
// MUSTER_E2E_SLOW=1 is set.
package e2e
