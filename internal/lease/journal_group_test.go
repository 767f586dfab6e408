package lease

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// openLoaded opens and loads a fresh journal in a temporary directory.
func openLoaded(t *testing.T) (*FileJournal, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tokens.journal")
	j, err := OpenFileJournal(path, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := j.Load(); err != nil {
		j.Close()
		t.Fatal(err)
	}
	return j, path
}

// queued is how many records wait in the open group.
func (j *FileJournal) queued() int {
	j.qmu.Lock()
	defer j.qmu.Unlock()
	return j.open.n
}

// waitQueued polls until n records wait in the open group.
func waitQueued(t *testing.T, j *FileJournal, n int) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); j.queued() != n; {
		if time.Now().After(end) {
			t.Fatalf("%d records queued, want %d", j.queued(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// appendConcurrently starts one Append per token (registration i+1 gets
// tokens[i]) and one AppendBatch of batch, and returns their errors once all
// have returned.
func appendConcurrently(j *FileJournal, tokens []string, batch []Record) func() []error {
	errs := make([]error, len(tokens)+1)
	var wg sync.WaitGroup
	for i, tok := range tokens {
		wg.Go(func() { errs[i] = j.Append(uint64(i+1), tok) })
	}
	wg.Go(func() { errs[len(tokens)] = j.AppendBatch(batch) })
	return func() []error {
		wg.Wait()
		return errs
	}
}

func loadFile(t *testing.T, path string) map[uint64]string {
	t.Helper()
	j, err := OpenFileJournal(path, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	got, err := j.Load()
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// Appends that arrive while a write is under way are written together, with
// one write(2), and every one of them returns once that write is done.
func TestConcurrentAppendsShareOneWrite(t *testing.T) {
	j, path := openLoaded(t)
	defer j.Close()
	want := map[uint64]string{}
	tokens := make([]string, 20)
	for i := range tokens {
		tokens[i] = NewToken()
		want[uint64(i+1)] = tokens[i]
	}
	batch := []Record{{RegIndex: 100, Token: NewToken()}, {RegIndex: 101, Token: NewToken()}}
	for _, r := range batch {
		want[r.RegIndex] = r.Token
	}

	j.writer <- struct{}{} // a write under way: everyone queues
	wait := appendConcurrently(j, tokens, batch)
	waitQueued(t, j, len(want))
	if got := size(t, path); got != 0 {
		t.Fatalf("%d bytes written while the writer's turn was held", got)
	}
	<-j.writer
	for i, err := range wait() {
		if err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
	j.mu.Lock()
	writes, records := j.writes, j.records
	j.mu.Unlock()
	if writes != 1 || records != len(want) {
		t.Fatalf("%d records in %d writes, want %d in 1", records, writes, len(want))
	}
	if got := loadFile(t, path); !maps.Equal(got, want) {
		t.Fatalf("loaded %v, want %v", got, want)
	}
}

// A write that fails fails every append of its group, and leaves nothing of
// the group in the file; the journal takes appends again afterwards.
func TestFailedGroupWriteReachesEveryWaiter(t *testing.T) {
	j, path := openLoaded(t)
	defer j.Close()
	first := NewToken()
	if err := j.Append(1, first); err != nil {
		t.Fatal(err)
	}
	tokens := []string{NewToken(), NewToken(), NewToken(), NewToken()}
	batch := []Record{{RegIndex: 50, Token: NewToken()}}

	// Swap in a read-only descriptor of the file: the group's write fails.
	ro, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	j.mu.Lock()
	rw := j.f
	j.f = ro
	j.mu.Unlock()
	j.writer <- struct{}{}
	wait := appendConcurrently(j, tokens, batch)
	waitQueued(t, j, len(tokens)+len(batch))
	<-j.writer
	errs := wait()
	for i, err := range errs {
		// One write, one error: every waiter gets the write's own error.
		if !errors.Is(err, syscall.EBADF) || err != errs[0] {
			t.Fatalf("append %d: %v, want the group's write error (EBADF), %v", i, err, errs[0])
		}
	}
	j.mu.Lock()
	j.f = rw
	j.mu.Unlock()
	ro.Close()

	if got := size(t, path); got != recordBytes {
		t.Fatalf("file of %d bytes after the failed write, want the one good record (%d)", got, recordBytes)
	}
	later := NewToken()
	if err := j.Append(2, later); err != nil {
		t.Fatal(err)
	}
	if got, want := loadFile(t, path), map[uint64]string{1: first, 2: later}; !maps.Equal(got, want) {
		t.Fatalf("loaded %v, want %v", got, want)
	}
}
