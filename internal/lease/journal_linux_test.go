//go:build linux

package lease

import (
	"maps"
	"os"
	"testing"
)

// TestCompactionWriteFailureKeepsTheJournal makes the compacted copy
// unwritable (the temporary path is a link to /dev/full, where every write
// fails with ENOSPC) and checks that the journal is left as it was.
func TestCompactionWriteFailureKeepsTheJournal(t *testing.T) {
	if fi, err := os.Stat("/dev/full"); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		t.Skipf("needs the /dev/full device: %v", err)
	}
	live := threeLive()
	j, path := churnJournal(t, minCompact, live)
	defer j.Close()
	if err := os.Symlink("/dev/full", path+".tmp"); err != nil {
		t.Fatal(err)
	}
	j.SetLive(func() map[uint64]string { return live })
	before := size(t, path)
	if err := j.compactIfLarge(); err == nil {
		t.Fatal("compaction reported success although its copy could not be written")
	}
	if fi, err := os.Lstat(path); err != nil || !fi.Mode().IsRegular() || fi.Size() != before {
		t.Fatalf("after a failed compaction the journal is %v, %v; want the regular file of %d bytes", fi, err, before)
	}
	// The journal still takes appends and loads everything back.
	tok := NewToken()
	if err := j.Append(7, tok); err != nil {
		t.Fatal(err)
	}
	j2, err := OpenFileJournal(path, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer j2.Close()
	got, err := j2.Load()
	live[7] = tok
	if err != nil || !maps.Equal(got, live) {
		t.Fatalf("loaded %v, %v; want %v", got, err, live)
	}
}
