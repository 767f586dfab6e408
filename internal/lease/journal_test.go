package lease_test

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/muster-registry/muster/internal/lease"
	"github.com/muster-registry/muster/internal/registry"
	"github.com/muster-registry/muster/internal/state"
)

// recordBytes is the size of one journal record: index, token, CRC.
const recordBytes = 8 + 22 + 4

func openJournal(t *testing.T, path string) (*lease.FileJournal, map[uint64]string) {
	t.Helper()
	j, err := lease.OpenFileJournal(path, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := j.Load()
	if err != nil {
		j.Close()
		t.Fatal(err)
	}
	return j, got
}

func closeJournal(t *testing.T, j *lease.FileJournal) {
	t.Helper()
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
}

func appendAll(t *testing.T, j *lease.FileJournal, recs ...any) {
	t.Helper()
	for i := 0; i < len(recs); i += 2 {
		if err := j.Append(recs[i].(uint64), recs[i+1].(string)); err != nil {
			t.Fatal(err)
		}
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func TestJournalRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.journal")
	j, got := openJournal(t, path)
	if len(got) != 0 {
		t.Fatalf("a new journal loads %v", got)
	}
	a1, a2, a3, b1, c1 := lease.NewToken(), lease.NewToken(), lease.NewToken(), lease.NewToken(), lease.NewToken()
	appendAll(t, j, uint64(1), a1, uint64(2), b1, uint64(1), a2, uint64(1<<40), c1, uint64(1), a3)
	if err := j.Append(3, "short"); err == nil {
		t.Fatal("a token of the wrong size was journaled")
	}
	closeJournal(t, j)

	j, got = openJournal(t, path)
	want := map[uint64]string{1: a3, 2: b1, 1 << 40: c1}
	if !maps.Equal(got, want) {
		t.Fatalf("loaded %v, want the newest token per registration %v", got, want)
	}
	// Appends after a load go after the records loaded, not over them.
	d1 := lease.NewToken()
	appendAll(t, j, uint64(4), d1)
	closeJournal(t, j)
	_, got = openJournal(t, path)
	want[4] = d1
	if !maps.Equal(got, want) {
		t.Fatalf("after another append loaded %v, want %v", got, want)
	}
	if size := fileSize(t, path); size != 6*recordBytes {
		t.Fatalf("file is %d bytes, want 6 records", size)
	}
}

func TestJournalCutsATornTail(t *testing.T) {
	// Each case starts from a journal of three good records and damages its end
	// so that only the first two are whole.
	truncate := func(size int64) func(t *testing.T, path string) {
		return func(t *testing.T, path string) {
			if err := os.Truncate(path, size); err != nil {
				t.Fatal(err)
			}
		}
	}
	tests := []struct {
		name   string
		damage func(t *testing.T, path string)
	}{
		{"a few garbage bytes", func(t *testing.T, path string) {
			truncate(2*recordBytes)(t, path)
			appendBytes(t, path, []byte{1, 2, 3, 4, 5})
		}},
		{"a whole record of zeros", func(t *testing.T, path string) {
			truncate(2*recordBytes)(t, path)
			appendBytes(t, path, make([]byte, recordBytes))
		}},
		{"truncated mid-record", truncate(3*recordBytes - 7)},
		{"truncated one byte short", truncate(3*recordBytes - 1)},
		{"truncated after the index", truncate(2*recordBytes + 8)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "tokens.journal")
			j, _ := openJournal(t, path)
			a, b, c := lease.NewToken(), lease.NewToken(), lease.NewToken()
			appendAll(t, j, uint64(1), a, uint64(2), b, uint64(3), c)
			closeJournal(t, j)
			tc.damage(t, path)

			j, got := openJournal(t, path)
			if want := map[uint64]string{1: a, 2: b}; !maps.Equal(got, want) {
				t.Fatalf("loaded %v, want %v", got, want)
			}
			if size := fileSize(t, path); size != 2*recordBytes {
				t.Fatalf("after load the file is %d bytes, want the 2 good records (%d)", size, 2*recordBytes)
			}
			// Later appends land after the good records and load back.
			d := lease.NewToken()
			appendAll(t, j, uint64(4), d, uint64(1), c)
			closeJournal(t, j)
			_, got = openJournal(t, path)
			if want := map[uint64]string{1: c, 2: b, 4: d}; !maps.Equal(got, want) {
				t.Fatalf("after appending loaded %v, want %v", got, want)
			}
		})
	}
}

func appendBytes(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
}

func TestJournalStopsAtACorruptRecord(t *testing.T) {
	tests := []struct {
		name   string
		offset int64 // of the flipped byte
		want   int   // records that load
	}{
		{"index of the second record", recordBytes + 2, 1},
		{"token of the second record", recordBytes + 8 + 5, 1},
		{"checksum of the third record", 3*recordBytes - 1, 2},
		{"first record", 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "tokens.journal")
			j, _ := openJournal(t, path)
			toks := []string{lease.NewToken(), lease.NewToken(), lease.NewToken(), lease.NewToken()}
			for i, tok := range toks {
				appendAll(t, j, uint64(i+1), tok)
			}
			closeJournal(t, j)

			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			raw[tc.offset] ^= 0x40
			if err := os.WriteFile(path, raw, 0o600); err != nil {
				t.Fatal(err)
			}

			_, got := openJournal(t, path)
			want := map[uint64]string{}
			for i := range tc.want {
				want[uint64(i+1)] = toks[i]
			}
			if !maps.Equal(got, want) {
				t.Fatalf("loaded %v, want %v", got, want)
			}
			if size := fileSize(t, path); size != int64(tc.want)*recordBytes {
				t.Fatalf("file is %d bytes after load, want %d", size, tc.want*recordBytes)
			}
		})
	}
}

// failingJournal refuses every append.
type failingJournal struct{}

func (failingJournal) Load() (map[uint64]string, error) { return nil, nil }
func (failingJournal) Append(uint64, string) error      { return errors.New("disk full") }
func (failingJournal) Close() error                     { return nil }

func TestHeartbeatIsNotAcknowledgedUnlessJournaled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tb := newTable(t, lease.Options{Journal: failingJournal{}})
		defer tb.SetLeader(false)
		tb.SetLeader(true)
		a := instance("web-1", 1, 10)
		tb.InstanceAdded(a)
		if _, _, err := tb.Heartbeat(a.Key(), a.Token); err == nil {
			t.Fatal("a heartbeat whose rotation was not journaled succeeded")
		}
		// The client keeps the token it sent.
		if l, _ := tb.Get(a.Key(), 1); l.Token != a.Token {
			t.Fatalf("token after a failed journal write = %q, want the one sent", l.Token)
		}
	})
}

type loadFailingJournal struct{ failingJournal }

func (loadFailingJournal) Load() (map[uint64]string, error) { return nil, errors.New("unreadable") }

func TestNewFailsWhenTheJournalDoesNotLoad(t *testing.T) {
	if _, err := lease.New(lease.Options{Journal: loadFailingJournal{}}); err == nil {
		t.Fatal("New ignored a journal that failed to load")
	}
}

// TestTokensSurviveARestart runs a table with a journal, stops it, and starts
// a new one on the same file, fed the same registrations from the log (which
// carry only the first token), as a restarted server would be.
func TestTokensSurviveARestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.journal")
	synctest.Test(t, func(t *testing.T) {
		a, b, c := instance("web-a", 3, 10), instance("web-b", 4, 10), instance("web-c", 5, 10)

		j1, err := lease.OpenFileJournal(path, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		tb1 := newTable(t, lease.Options{Journal: j1})
		j1.SetLive(tb1.Tokens)
		tb1.SetLeader(true)
		for _, i := range []*state.Instance{a, b, c} {
			tb1.InstanceAdded(i)
		}
		spentA := []string{a.Token}
		tokA := a.Token
		for range 5 {
			time.Sleep(time.Second)
			tokA, _ = heartbeat(t, tb1, a.Key(), tokA)
			spentA = append(spentA, tokA)
		}
		spentA = spentA[:len(spentA)-1]
		tokB, _ := heartbeat(t, tb1, b.Key(), b.Token)
		// c never heartbeats: its first token must still work.
		tb1.SetLeader(false)
		closeJournal(t, j1)

		j2, err := lease.OpenFileJournal(path, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer closeJournal(t, j2)
		tb2 := newTable(t, lease.Options{Journal: j2})
		defer tb2.SetLeader(false)
		for _, i := range []*state.Instance{a, b, c} {
			tb2.InstanceAdded(i) // replayed from the log: the first token
		}
		tb2.SetLeader(true)

		for _, spent := range spentA {
			refused(t, tb2, a.Key(), spent, registry.ErrTokenMismatch)
		}
		refused(t, tb2, b.Key(), b.Token, registry.ErrTokenMismatch)
		refused(t, tb2, b.Key(), tokA, registry.ErrTokenMismatch)
		tokA2, _ := heartbeat(t, tb2, a.Key(), tokA)
		heartbeat(t, tb2, b.Key(), tokB)
		heartbeat(t, tb2, c.Key(), c.Token)
		refused(t, tb2, a.Key(), tokA, registry.ErrTokenMismatch)

		// A registration the old table never saw starts from its own first token.
		d := instance("web-d", 6, 10)
		tb2.InstanceAdded(d)
		heartbeat(t, tb2, d.Key(), d.Token)
		if got := tb2.Tokens()[3]; got != tokA2 {
			t.Fatalf("table holds %q for a, want %q", got, tokA2)
		}
	})
}

// Tokens read from the journal only serve the replay of the log: after the
// first promotion, a restore (as a follower would install) re-adds
// registrations with the tokens in the snapshot, never with journal tokens
// that may have been spent since.
func TestJournalTokensAreDroppedAtPromotion(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.journal")
	synctest.Test(t, func(t *testing.T) {
		a := instance("web-a", 3, 10)
		j1, err := lease.OpenFileJournal(path, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		tb1 := newTable(t, lease.Options{Journal: j1})
		tb1.SetLeader(true)
		tb1.InstanceAdded(a)
		journaled, _ := heartbeat(t, tb1, a.Key(), a.Token)
		tb1.SetLeader(false)
		closeJournal(t, j1)

		j2, err := lease.OpenFileJournal(path, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer closeJournal(t, j2)
		tb2 := newTable(t, lease.Options{Journal: j2})
		defer tb2.SetLeader(false)
		tb2.InstanceAdded(a)
		tb2.SetLeader(true)
		if got := tb2.Tokens()[a.RegIndex]; got != journaled {
			t.Fatalf("replayed registration holds %q, want the journal's %q", got, journaled)
		}
		tb2.Reset()
		tb2.InstanceAdded(a)
		if got := tb2.Tokens()[a.RegIndex]; got != a.Token {
			t.Fatalf("after promotion, a restored registration holds %q, want its own first token %q", got, a.Token)
		}
	})
}

// A batch whose journal write fails renews nothing: every heartbeat fails
// and every sent token stays current.
func TestBatchIsNotAcknowledgedUnlessJournaled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tb := newTable(t, lease.Options{Journal: failingJournal{}})
		defer tb.SetLeader(false)
		tb.SetLeader(true)
		a, b := instance("web-a", 3, 10), instance("web-b", 4, 10)
		tb.InstanceAdded(a)
		tb.InstanceAdded(b)
		out := tb.HeartbeatBatch([]lease.Beat{{Key: a.Key(), Token: a.Token}, {Key: b.Key(), Token: "wrong"}})
		if out[0].Err == nil || out[0].Token != "" {
			t.Fatalf("renewal acknowledged without the journal: %+v", out[0])
		}
		if !errors.Is(out[1].Err, registry.ErrTokenMismatch) {
			t.Fatalf("the bad token's own error was lost: %v", out[1].Err)
		}
		if got := tb.Tokens()[a.RegIndex]; got != a.Token {
			t.Fatalf("token after a failed batch = %q, want the sent %q", got, a.Token)
		}
	})
}

// With a journal, a batch renews each good heartbeat and journals it, so
// the new tokens survive a restart.
func TestBatchTokensSurviveARestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.journal")
	synctest.Test(t, func(t *testing.T) {
		a, b := instance("web-a", 3, 10), instance("web-b", 4, 10)
		j1, err := lease.OpenFileJournal(path, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		tb1 := newTable(t, lease.Options{Journal: j1})
		tb1.SetLeader(true)
		tb1.InstanceAdded(a)
		tb1.InstanceAdded(b)
		out := tb1.HeartbeatBatch([]lease.Beat{{Key: a.Key(), Token: a.Token}, {Key: b.Key(), Token: b.Token}})
		tb1.SetLeader(false)
		closeJournal(t, j1)

		j2, err := lease.OpenFileJournal(path, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer closeJournal(t, j2)
		tb2 := newTable(t, lease.Options{Journal: j2})
		defer tb2.SetLeader(false)
		tb2.InstanceAdded(a)
		tb2.InstanceAdded(b)
		tb2.SetLeader(true)
		refused(t, tb2, a.Key(), a.Token, registry.ErrTokenMismatch)
		heartbeat(t, tb2, a.Key(), out[0].Token)
		heartbeat(t, tb2, b.Key(), out[1].Token)
	})
}

// A heartbeat that cannot be journaled renews nothing: the deadline stays
// where it was, so the instance still expires on time.
func TestUnjournaledHeartbeatKeepsTheDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tb := newTable(t, lease.Options{Journal: failingJournal{}})
		defer tb.SetLeader(false)
		tb.SetLeader(true)
		a := instance("web-a", 3, 3)
		tb.InstanceAdded(a)
		before, _ := tb.Get(a.Key(), a.RegIndex)
		time.Sleep(time.Second)
		if _, _, err := tb.Heartbeat(a.Key(), a.Token); err == nil {
			t.Fatal("heartbeat acknowledged without the journal")
		}
		after, _ := tb.Get(a.Key(), a.RegIndex)
		if !after.Deadline.Equal(before.Deadline) || !after.LastBeat.Equal(before.LastBeat) {
			t.Fatalf("lease moved from %+v to %+v", before, after)
		}
		b := nextBatch(t, tb, 3*time.Second)
		if len(b) != 1 || !b[0].Deadline.Equal(before.Deadline.UTC().Truncate(time.Millisecond)) {
			t.Fatalf("expiry %+v, want the original deadline %s", b, before.Deadline)
		}
	})
}

// Many goroutines heartbeat at once through one journal (so their rotations
// are group-committed), each its own instance, single heartbeats and batches
// mixed; after a restart on the same file every instance takes exactly the
// last token it was given, and none of the spent ones.
func TestConcurrentHeartbeatsSurviveARestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.journal")
	const workers, rounds = 16, 50
	insts := make([]*state.Instance, workers)
	for i := range insts {
		insts[i] = instance(fmt.Sprintf("web-%d", i), uint64(i+1), 60)
	}
	j1, err := lease.OpenFileJournal(path, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	tb1 := newTable(t, lease.Options{Journal: j1})
	for _, in := range insts {
		tb1.InstanceAdded(in)
	}
	tb1.SetLeader(true)
	last := make([]string, workers)
	spent := make([][]string, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w, in := range insts {
		wg.Go(func() {
			tok := in.Token
			for r := range rounds {
				var next string
				var err error
				if r%2 == 0 {
					next, _, err = tb1.Heartbeat(in.Key(), tok)
				} else {
					out := tb1.HeartbeatBatch([]lease.Beat{{Key: in.Key(), Token: tok}})
					next, err = out[0].Token, out[0].Err
				}
				if err != nil {
					errs[w] = err
					return
				}
				spent[w] = append(spent[w], tok)
				tok = next
			}
			last[w] = tok
		})
	}
	wg.Wait()
	tb1.SetLeader(false)
	closeJournal(t, j1)
	for w, err := range errs {
		if err != nil {
			t.Fatalf("worker %d: %v", w, err)
		}
	}

	j2, err := lease.OpenFileJournal(path, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer closeJournal(t, j2)
	tb2 := newTable(t, lease.Options{Journal: j2})
	defer tb2.SetLeader(false)
	for _, in := range insts {
		tb2.InstanceAdded(in) // replayed from the log: the first token
	}
	tb2.SetLeader(true)
	for w, in := range insts {
		for _, s := range spent[w] {
			refused(t, tb2, in.Key(), s, registry.ErrTokenMismatch)
		}
		heartbeat(t, tb2, in.Key(), last[w])
	}
}
