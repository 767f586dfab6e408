package main

import (
	"encoding/json"
	"net/http"
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
