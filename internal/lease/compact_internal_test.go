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

// TestCompactionAbandonedWhenAnAppendFails fails an append while a
// compaction runs. The rotation it carried is undone in the table, but the
// live set may already hold it, so the compaction must not swap its copy in;
// it is not tried again until a second with no failure has passed.
func TestCompactionAbandonedWhenAnAppendFails(t *testing.T) {
	live := threeLive()
	j, path := churnJournal(t, minCompact, live)
	defer j.Close()
	j.SetLive(func() map[uint64]string { return live })
	setCompactHook(j, func() {
		// The file as seen through a read-only descriptor: the write fails.
		ro, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer ro.Close()
		j.mu.Lock()
		f := j.f
		j.f = ro
		j.mu.Unlock()
		if err := j.Append(4, NewToken()); err == nil {
			t.Error("an append through a read-only descriptor succeeded")
		}
		j.mu.Lock()
		j.f = f
		j.mu.Unlock()
	})
	before := size(t, path)
	if err := j.compactIfLarge(); err != nil {
		t.Fatal(err)
	}
	if got := size(t, path); got != before || j.records != minCompact {
		t.Fatalf("compaction swapped in its copy (%d bytes to %d, %d records) although an append failed", before, got, j.records)
	}
	if _, err := os.Stat(path + ".tmp"); !os.IsNotExist(err) {
		t.Fatalf("the temporary file is left behind: %v", err)
	}
	setCompactHook(j, nil)
	if err := j.compactIfLarge(); err != nil {
		t.Fatal(err)
	}
	if got := size(t, path); got != before {
		t.Fatalf("compacted in the second after a failed append: %d bytes to %d", before, got)
	}
	if err := j.compactIfLarge(); err != nil {
		t.Fatal(err)
	}
	if got := size(t, path); got != int64(len(live))*recordBytes {
		t.Fatalf("a second later the journal is %d bytes, want the %d live records", got, len(live))
	}
	if got := loadFile(t, path); !maps.Equal(got, live) {
		t.Fatalf("compacted journal loads %v, want %v", got, live)
	}
}
