package main

import (
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/muster-registry/muster/api"
	"github.com/muster-registry/muster/internal/servertest"
)

// TestSeededDataDirRestarts seeds a data directory (a snapshot and a log
// tail) and starts a server on it: every instance is there, those of the
// snapshot and those of the tail alike, with their tags and metadata.
func TestSeededDataDirRestarts(t *testing.T) {
	dir := t.TempDir()
	raftAddr := servertest.FreeAddr(t)
	o := seedOptions{instances: 300, services: 7, logEntries: 20, nodeID: "test", raftAddr: raftAddr}
	if err := seedDataDir(dir, o); err != nil {
		t.Fatal(err)
	}
	srv := servertest.Start(t, servertest.Options{DataDir: dir, RaftAddr: raftAddr})

	var st api.Status
	getJSON(t, srv.URL+"/v1/status", &st)
	if st.Instances != 300 || st.Services != 7 || st.Role != "leader" {
		t.Fatalf("status %+v, want 300 instances in 7 services on the leader", st)
	}
	for _, i := range []int{0, 279, 280, 299} { // in the snapshot, then in the tail
		want := seedInstance(i, o.services)
		var got api.Instance
		getJSON(t, srv.URL+"/v1/services/prod/"+want.Service+"/instances/"+want.ID, &got)
		if got.Address != want.Address || len(got.Tags) != 4 || got.Tags[3] != want.Tags[3] ||
			got.Metadata["host"] != want.Metadata.Map()["host"] || got.Status != api.StatusPassing {
			t.Errorf("instance %d = %+v, want %+v", i, got, want)
		}
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// Seeding refuses a directory that holds anything, so it can never damage a
// server's data directory, and refuses empty names; it writes nothing then.
func TestSeedRefusesAnExistingDirectory(t *testing.T) {
	dir := t.TempDir()
	nodeID := filepath.Join(dir, "node-id")
	if err := os.WriteFile(nodeID, []byte("prod-node-7\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	o := seedOptions{instances: 10, services: 1, logEntries: 1, nodeID: "muster-1", raftAddr: "127.0.0.1:1"}
	if err := seedDataDir(dir, o); err == nil || !strings.Contains(err.Error(), "is not empty") {
		t.Fatalf("seeding a used directory: %v", err)
	}
	if b, err := os.ReadFile(nodeID); err != nil || string(b) != "prod-node-7\n" {
		t.Fatalf("node-id is now %q, %v", b, err)
	}
	for _, bad := range []seedOptions{{instances: 10, services: 1, raftAddr: "x:1"}, {instances: 10, services: 1, nodeID: "n"}} {
		fresh := filepath.Join(t.TempDir(), "new")
		if err := seedDataDir(fresh, bad); err == nil || !strings.Contains(err.Error(), "must not be empty") {
			t.Fatalf("seeding with %+v: %v", bad, err)
		}
		if _, err := os.Stat(fresh); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("a refused seed created %s", fresh)
		}
	}
}
