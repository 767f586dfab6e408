package lease

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/muster-registry/muster/internal/state"
)

// churnJournal writes a journal file of `records` records for registrations
// 1..len(live), the last record of each holding its token in live, and opens
// and loads it. The caller closes it.
func churnJournal(t *testing.T, records int, live map[uint64]string) (*FileJournal, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tokens.journal")
	buf := make([]byte, records*recordBytes)
	n := uint64(len(live))
	for i := range records - len(live) {
		encodeRecord(buf[i*recordBytes:], uint64(i)%n+1, fmt.Sprintf("%022d", i))
	}
	for i := range len(live) {
		idx := uint64(i + 1)
		encodeRecord(buf[(records-len(live)+i)*recordBytes:], idx, live[idx])
	}
	if err := os.WriteFile(path, buf, 0o600); err != nil {
		t.Fatal(err)
	}
	j, err := openFileJournal(path, nil, nil, false) // compacted by hand only
	if err != nil {
		t.Fatal(err)
	}
	got, err := j.Load()
	if err != nil {
		j.Close()
		t.Fatal(err)
	}
	if !maps.Equal(got, live) || j.records != records {
		t.Fatalf("loaded %d entries from %d records, want %v from %d", len(got), j.records, live, records)
	}
	return j, path
}

func threeLive() map[uint64]string {
	return map[uint64]string{1: NewToken(), 2: NewToken(), 3: NewToken()}
}

func size(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func TestCompactIfLarge(t *testing.T) {
	manyLive := map[uint64]string{}
	for i := range minCompact/4 + 1 {
		manyLive[uint64(i+1)] = NewToken()
	}
	tests := []struct {
		name        string
		records     int
		live        func() map[uint64]string // nil: no live function
		wantCompact bool
	}{
		{"no live function", minCompact, nil, false},
		{"below the threshold", minCompact - 1, func() map[uint64]string { return map[uint64]string{} }, false},
		{"mostly live records", minCompact, func() map[uint64]string { return manyLive }, false},
		{"mostly spent records", minCompact, nil, true}, // live set below
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			live := threeLive()
			j, path := churnJournal(t, tc.records, live)
			closed := false
			defer func() {
				if !closed {
					j.Close()
				}
			}()
			if tc.wantCompact {
				tc.live = func() map[uint64]string { return live }
			}
			j.SetLive(tc.live)
			before := size(t, path)
			if err := j.compactIfLarge(); err != nil {
				t.Fatal(err)
			}
			after := size(t, path)
			if !tc.wantCompact {
				if after != before {
					t.Fatalf("compacted from %d to %d bytes", before, after)
				}
				return
			}
			if after != int64(len(live))*recordBytes || j.records != len(live) {
				t.Fatalf("compacted to %d bytes, %d records; want %d records", after, j.records, len(live))
			}
			if _, err := os.Stat(path + ".tmp"); !os.IsNotExist(err) {
				t.Fatalf("the temporary file is left behind: %v", err)
			}
			// Appends go to the compacted file, and everything loads back.
			tok := NewToken()
			if err := j.Append(9, tok); err != nil {
				t.Fatal(err)
			}
			live[2] = NewToken()
			if err := j.Append(2, live[2]); err != nil {
				t.Fatal(err)
			}
			closed = true
			if err := j.Close(); err != nil {
				t.Fatal(err)
			}
			j2, err := OpenFileJournal(path, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer j2.Close()
			got, err := j2.Load()
			live[9] = tok
			if err != nil || !maps.Equal(got, live) {
				t.Fatalf("after compaction loaded %v, %v; want %v", got, err, live)
			}
		})
	}
}

// TestSyncLoopCompacts checks that the background loop compacts on its own
// within a second, with the Table's Tokens as the live set.
func TestSyncLoopCompacts(t *testing.T) {
	live := threeLive()
	j, path := churnJournal(t, minCompact, live)
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	synctest.Test(t, func(t *testing.T) {
		j, err := OpenFileJournal(path, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer j.Close()
		tb, err := New(Options{Journal: j})
		if err != nil {
			t.Fatal(err)
		}
		j.SetLive(tb.Tokens)
		// The log replays the three registrations, with their first tokens.
		for idx := range live {
			tb.InstanceAdded(&state.Instance{Namespace: "ns", Service: "svc", ID: fmt.Sprint("web-", idx), RegIndex: idx, HeartbeatTimeout: 30, Token: "first"})
		}
		if got := tb.Tokens(); !maps.Equal(got, live) {
			t.Fatalf("table holds %v, want the journal's %v", got, live)
		}
		time.Sleep(time.Second + time.Millisecond)
		synctest.Wait()
		if got := size(t, path); got != 3*recordBytes {
			t.Fatalf("after a second the journal is %d bytes, want 3 records", got)
		}
	})
}

// At start-up the log is replayed into the table while the journal's
// tokens wait in the table's restored map: a compaction then would keep
// only the few registrations replayed so far and drop the newest tokens of
// the rest, which a second restart would need. The journal is compacted
// only once the table leads.
func TestNoCompactionWhileTheLogReplays(t *testing.T) {
	live := threeLive()
	j, path := churnJournal(t, minCompact, live)
	defer j.Close()
	tb, err := New(Options{Journal: j})
	if err != nil {
		t.Fatal(err)
	}
	j.SetLive(tb.LiveTokens)
	// One registration of three replayed so far.
	tb.InstanceAdded(&state.Instance{Namespace: "ns", Service: "svc", ID: "web-1", RegIndex: 1, HeartbeatTimeout: 30, Token: "first"})
	before := size(t, path)
	if err := j.compactIfLarge(); err != nil {
		t.Fatal(err)
	}
	if after := size(t, path); after != before {
		t.Fatalf("compacted during replay: %d bytes to %d", before, after)
	}
	for idx := range live {
		if idx != 1 {
			tb.InstanceAdded(&state.Instance{Namespace: "ns", Service: "svc", ID: fmt.Sprint("web-", idx), RegIndex: idx, HeartbeatTimeout: 30, Token: "first"})
		}
	}
	tb.SetLeader(true)
	defer tb.SetLeader(false)
	if err := j.compactIfLarge(); err != nil {
		t.Fatal(err)
	}
	if after := size(t, path); after != int64(len(live)*recordBytes) {
		t.Fatalf("after promotion the journal is %d bytes, want the %d live records", after, len(live))
	}
	reloaded, err := j.Load()
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(reloaded, live) {
		t.Fatalf("compacted journal holds %v, want %v", reloaded, live)
	}
}
