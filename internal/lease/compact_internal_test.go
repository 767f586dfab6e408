package lease

import (
	"maps"
	"os"
	"testing"
)

// setCompactHook sets the hook under the compaction's lock: the background
// loop may be compacting too.
func setCompactHook(j *FileJournal, hook func()) {
	j.cmu.Lock()
	defer j.cmu.Unlock()
	j.compactHook = hook
}

// TestCompactionLetsAppendsThrough appends while a compaction runs: once
// while it reads the live set and once after its copy is written. Neither
// waits for it (under the old code, which held the journal's lock
// throughout, the first deadlocked), and both are in the compacted file.
func TestCompactionLetsAppendsThrough(t *testing.T) {
	live := threeLive()
	j, path := churnJournal(t, minCompact, live)
	defer j.Close()
	want := maps.Clone(live)
	j.SetLive(func() map[uint64]string {
		// A rotation of a registration the live set does not show yet.
		want[10] = NewToken()
		if err := j.Append(10, want[10]); err != nil {
			t.Error(err)
		}
		return maps.Clone(live)
	})
	setCompactHook(j, func() {
		want[2], want[11] = NewToken(), NewToken()
		if err := j.AppendBatch([]Record{{2, want[2]}, {11, want[11]}}); err != nil {
			t.Error(err)
		}
	})
	if err := j.compactIfLarge(); err != nil {
		t.Fatal(err)
	}
	if got := size(t, path); got != 6*recordBytes || j.size != got || j.records != 6 {
		t.Fatalf("compacted to %d bytes (journal counts %d bytes, %d records), want 3 live and 3 appended records", got, j.size, j.records)
	}
	// Appends after the swap go to the new file too.
	want[3] = NewToken()
	if err := j.Append(3, want[3]); err != nil {
		t.Fatal(err)
	}
	if got := loadFile(t, path); !maps.Equal(got, want) {
		t.Fatalf("compacted journal loads %v, want %v", got, want)
	}
	if _, err := os.Stat(path + ".tmp"); !os.IsNotExist(err) {
		t.Fatalf("the temporary file is left behind: %v", err)
	}
}

// TestCompactionCopiesOnlyWrittenTokens: the table may still show a
// rotation whose append failed (it is undone just after), so a compaction
// copies each live registration's newest record from the file, never the
// table's token; and it keeps no record of a registration that is not live.
func TestCompactionCopiesOnlyWrittenTokens(t *testing.T) {
	written := threeLive()
	j, path := churnJournal(t, minCompact, written)
	defer j.Close()
	table := maps.Clone(written)
	table[2] = NewToken() // its append failed; not undone yet
	delete(table, 3)      // expired
	table[4] = NewToken() // registered, never rotated: nothing journaled
	j.SetLive(func() map[uint64]string { return maps.Clone(table) })
	if err := j.compactIfLarge(); err != nil {
		t.Fatal(err)
	}
	want := map[uint64]string{1: written[1], 2: written[2]}
	if got := loadFile(t, path); !maps.Equal(got, want) {
		t.Fatalf("compacted journal loads %v, want %v", got, want)
	}
	if got := size(t, path); got != 2*recordBytes {
		t.Fatalf("compacted to %d bytes, want 2 records", got)
	}
}

// With a live count, the once-a-second check lists the live tokens only
// when the file holds four times as many records as there are live
// registrations; it then compacts as without the count.
func TestCompactionAsksTheCountFirst(t *testing.T) {
	live := threeLive()
	j, path := churnJournal(t, minCompact, live)
	defer j.Close()
	listed := 0
	j.SetLive(func() map[uint64]string { listed++; return maps.Clone(live) })
	j.SetLiveCount(func() int { return minCompact/4 + 1 })
	if err := j.compactIfLarge(); err != nil {
		t.Fatal(err)
	}
	if listed != 0 || size(t, path) != minCompact*recordBytes {
		t.Fatalf("with %d records and %d live: listed %d times, %d bytes", minCompact, minCompact/4+1, listed, size(t, path))
	}
	j.SetLiveCount(func() int { return len(live) })
	if err := j.compactIfLarge(); err != nil {
		t.Fatal(err)
	}
	if listed != 1 || size(t, path) != int64(len(live))*recordBytes {
		t.Fatalf("with %d live: listed %d times, compacted to %d bytes", len(live), listed, size(t, path))
	}
}
