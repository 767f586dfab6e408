package lease

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// Journal persists the current heartbeat token of each registration, so that
// a client's token stays valid across a restart and a spent token is never
// revived. It is local to a node and not replicated.
type Journal interface {
	// Load returns the newest token recorded for each registration.
	Load() (map[uint64]string, error)
	// Append records that registration regIndex's current token is token.
	// It returns once the record has reached the operating system, so it
	// survives the process being killed.
	Append(regIndex uint64, token string) error
	// Close flushes and closes the journal.
	Close() error
}

// Record is one journal record: registration regIndex's current token.
type Record struct {
	RegIndex uint64
	Token    string
}

// BatchJournal is a Journal that can write many records at once.
type BatchJournal interface {
	Journal
	// AppendBatch records all of recs with one write.
	AppendBatch(recs []Record) error
}

// FileJournal is a Journal in one append-only file of fixed-size records
// (registration index, token, CRC), written with write(2) before Append
// returns and fsync'd every second, so a record survives kill -9 at once and
// a power loss after at most a second. A torn or corrupt tail (a crash
// mid-write) is cut off at load. When the file holds far more records than
// live registrations, it is rewritten with one record per live registration.
//
// Appends are group-committed: concurrent Append and AppendBatch calls queue
// their records in the open group; one of them at a time (the holder of the
// writer's turn) writes every queued record with one write(2), and each call
// returns once the group holding its records is written, with that write's
// error if it failed.
//
// Concurrency: safe for concurrent use. Lock order: cmu, the writer's turn,
// then mu; qmu is never held while waiting for anything else.
type FileJournal struct {
	path string
	log  *slog.Logger

	// writer is the writer's turn: a goroutine that sends to it (capacity
	// one) may write the open group, and receives from it when done.
	writer chan struct{}
	qmu    sync.Mutex // guards open
	open   *group     // records queued for the next write
	spare  []byte     // a written group's buffer, for the next group; the turn's holder owns it
	// scratch holds *[]byte buffers in which AppendBatch encodes records
	// before queueing them, so the queue's lock is held only for a copy.
	scratch sync.Pool

	// cmu is held by a compaction throughout; compactHook is the
	// compaction's own.
	cmu         sync.Mutex
	compactHook func() // tests: runs after the copy, before the swap

	mu      sync.Mutex // guards the fields below
	live    func() map[uint64]string
	count   func() int // nil: unknown
	f       *os.File
	records int    // records in the file
	size    int64  // bytes of whole records in the file
	writes  uint64 // write(2) calls of appends that succeeded
	dirty   bool
	stop    chan struct{}
	done    chan struct{}
}

// group is records queued for one write(2). Once done is closed, err is the
// write's outcome and the group is no longer touched.
type group struct {
	buf  []byte
	n    int
	done chan struct{}
	err  error
}

func newGroup(buf []byte) *group {
	return &group{buf: buf[:0], done: make(chan struct{})}
}

const (
	tokenBytes  = 22 // base64url of 16 bytes, unpadded
	recordBytes = 8 + tokenBytes + 4
	minCompact  = 100_000
	// maxSpare is the largest group buffer kept for reuse.
	maxSpare = 1 << 20
)

// OpenFileJournal opens (creating if missing) the journal at path. live, when
// set, returns the current token of every live registration; it is used to
// compact the file.
func OpenFileJournal(path string, log *slog.Logger, live func() map[uint64]string) (*FileJournal, error) {
	return openFileJournal(path, log, live, true)
}

// openFileJournal is OpenFileJournal; without loop no background goroutine
// syncs or compacts (tests that compact by hand).
func openFileJournal(path string, log *slog.Logger, live func() map[uint64]string, loop bool) (*FileJournal, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lease: opening token journal: %w", err)
	}
	j := &FileJournal{path: path, log: log, live: live, f: f, stop: make(chan struct{}), done: make(chan struct{}),
		writer: make(chan struct{}, 1), open: newGroup(nil)}
	if loop {
		go j.syncLoop()
	} else {
		close(j.done)
	}
	return j, nil
}

// SetLive sets the function that compaction uses to list the live tokens;
// while it answers nil (not an empty map), the journal is not compacted.
func (j *FileJournal) SetLive(live func() map[uint64]string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.live = live
}

// SetLiveCount sets a cheap count of the live registrations. Once per
// second the journal checks whether it is due for compaction: with a
// count it lists the live tokens only when the file holds four times as
// many records, instead of building the whole map (a hundred thousand
// entries, tens of milliseconds of CPU) every second to find out.
func (j *FileJournal) SetLiveCount(count func() int) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.count = count
}

// Load reads every valid record; a torn or corrupt tail is truncated away and
// logged. The file is positioned for appending after it.
func (j *FileJournal) Load() (map[uint64]string, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if _, err := j.f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("lease: reading token journal: %w", err)
	}
	out := make(map[uint64]string)
	r := bufio.NewReaderSize(j.f, 1<<16)
	var rec [recordBytes]byte
	var good int64
	for {
		_, err := io.ReadFull(r, rec[:])
		if errors.Is(err, io.EOF) {
			break
		}
		if errors.Is(err, io.ErrUnexpectedEOF) || (err == nil && crc32.ChecksumIEEE(rec[:recordBytes-4]) != binary.LittleEndian.Uint32(rec[recordBytes-4:])) {
			j.log.Warn("token journal has a torn or corrupt tail; cutting it off", "path", j.path, "valid_bytes", good)
			break
		}
		if err != nil {
			return nil, fmt.Errorf("lease: reading token journal: %w", err)
		}
		out[binary.LittleEndian.Uint64(rec[:8])] = string(rec[8 : 8+tokenBytes])
		good += recordBytes
		j.records++
	}
	j.size = good
	if err := j.f.Truncate(good); err != nil {
		return nil, fmt.Errorf("lease: truncating token journal: %w", err)
	}
	if _, err := j.f.Seek(good, io.SeekStart); err != nil {
		return nil, fmt.Errorf("lease: positioning token journal: %w", err)
	}
	return out, nil
}

func encodeRecord(rec []byte, regIndex uint64, token string) {
	binary.LittleEndian.PutUint64(rec[:8], regIndex)
	copy(rec[8:8+tokenBytes], token)
	binary.LittleEndian.PutUint32(rec[recordBytes-4:], crc32.ChecksumIEEE(rec[:recordBytes-4]))
}

// Append writes one record; it returns once the record is written.
func (j *FileJournal) Append(regIndex uint64, token string) error {
	if len(token) != tokenBytes {
		return fmt.Errorf("lease: token of %d bytes cannot be journaled", len(token))
	}
	var rec [recordBytes]byte
	encodeRecord(rec[:], regIndex, token)
	return j.commit(rec[:], 1)
}

// AppendBatch writes many records with one write(2) (shared with concurrent
// appends); it returns once they are written.
func (j *FileJournal) AppendBatch(recs []Record) error {
	buf, _ := j.scratch.Get().(*[]byte)
	if buf == nil {
		buf = new([]byte)
	}
	defer j.scratch.Put(buf)
	b := slices.Grow((*buf)[:0], len(recs)*recordBytes)[:len(recs)*recordBytes]
	*buf = b
	for i, r := range recs {
		if len(r.Token) != tokenBytes {
			return fmt.Errorf("lease: token of %d bytes cannot be journaled", len(r.Token))
		}
		encodeRecord(b[i*recordBytes:], r.RegIndex, r.Token)
	}
	return j.commit(b, len(recs))
}

// commit writes n encoded records and returns once they are written. With
// the writer's turn free, it takes it and writes at once (with whatever
// others queued meanwhile); otherwise it queues them for the holder.
func (j *FileJournal) commit(recs []byte, n int) error {
	select {
	case j.writer <- struct{}{}:
		defer func() { <-j.writer }()
		j.qmu.Lock()
		g := j.open
		if g.n == 0 { // nobody waiting: no group to hand over
			j.qmu.Unlock()
			j.mu.Lock()
			defer j.mu.Unlock()
			return j.write(recs, n)
		}
		g.buf = append(g.buf, recs...)
		g.n += n
		j.qmu.Unlock()
		return j.writeOpen(g)
	default:
	}
	j.qmu.Lock()
	g := j.open
	g.buf = append(g.buf, recs...)
	g.n += n
	j.qmu.Unlock()
	return j.await(g)
}

// await returns once group g is written: either another goroutine writes it,
// or this one gets the writer's turn first and writes it, together with
// everything queued in it meanwhile.
func (j *FileJournal) await(g *group) error {
	select {
	case <-g.done:
		return g.err
	case j.writer <- struct{}{}:
	}
	defer func() { <-j.writer }()
	select {
	case <-g.done: // written by the previous holder of the turn
		return g.err
	default:
	}
	return j.writeOpen(g)
}

// writeOpen writes group g, which must be the open group, and tells its
// waiters; the caller holds the writer's turn. Groups leave the open slot
// only under the turn, and are done before it is passed on, so a group that
// is not done is still the open one.
func (j *FileJournal) writeOpen(g *group) error {
	j.qmu.Lock()
	j.open = newGroup(j.spare)
	j.qmu.Unlock()
	j.mu.Lock()
	g.err = j.write(g.buf, g.n)
	j.mu.Unlock()
	// The buffer is reused for a later group unless a burst grew it large.
	j.spare = nil
	if cap(g.buf) <= maxSpare {
		j.spare = g.buf
	}
	g.buf = nil
	close(g.done)
	return g.err
}

// write appends whole records; j.mu must be held. A failed write is cut back
// off, so a torn record never sits before later good ones.
func (j *FileJournal) write(b []byte, n int) error {
	if _, err := j.f.Write(b); err != nil {
		if terr := j.f.Truncate(j.size); terr == nil {
			_, _ = j.f.Seek(j.size, io.SeekStart)
		}
		return fmt.Errorf("lease: writing token journal: %w", err)
	}
	j.records += n
	j.size += int64(len(b))
	j.writes++
	j.dirty = true
	return nil
}

// compactIfLarge rewrites the file with one record per live registration
// when it holds more than four times as many records as there are live
// registrations.
//
// Appends go on while it runs. It notes the file's length, asks which
// registrations are live, and copies, for each, the newest record before
// that length, read back from the file: only tokens that were written are
// ever copied (a rotation whose append failed is undone in the table, but
// the table may still show it when asked). The copy is written and synced
// without the lock; the records appended since are then copied after it,
// most without the lock and the last few under it, before the files are
// swapped.
func (j *FileJournal) compactIfLarge() error {
	j.cmu.Lock()
	defer j.cmu.Unlock()
	j.mu.Lock()
	live, count, records, mark, old := j.live, j.count, j.records, j.size, j.f
	j.mu.Unlock()
	if live == nil || records < minCompact || (count != nil && records < 4*count()) {
		return nil
	}
	alive := live()
	if alive == nil || records < 4*len(alive) {
		return nil
	}
	// Whole records below j.size are never written again, and old is not
	// closed while cmu is held: they are read without the lock.
	newest, err := newestRecords(old, mark, alive)
	if err != nil {
		return fmt.Errorf("lease: compacting token journal: %w", err)
	}
	tmp := j.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("lease: compacting token journal: %w", err)
	}
	swapped := false
	defer func() {
		if !swapped {
			f.Close()
			_ = os.Remove(tmp)
		}
	}()
	w := bufio.NewWriterSize(f, 1<<16)
	for _, rec := range newest {
		_, _ = w.Write(rec[:])
	}
	// Assign the outer err: a failed flush must stop the rename, or a short
	// copy would replace the journal and lose live tokens.
	if err = w.Flush(); err != nil {
		return fmt.Errorf("lease: compacting token journal: %w", err)
	}
	j.mu.Lock()
	upTo := j.size
	j.mu.Unlock()
	if err := copyRange(f, old, mark, upTo); err != nil {
		return fmt.Errorf("lease: compacting token journal: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("lease: compacting token journal: %w", err)
	}
	if j.compactHook != nil {
		j.compactHook()
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := copyRange(f, j.f, upTo, j.size); err != nil {
		return fmt.Errorf("lease: compacting token journal: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("lease: compacting token journal: %w", err)
	}
	if err := os.Rename(tmp, j.path); err != nil {
		return fmt.Errorf("lease: compacting token journal: %w", err)
	}
	// The rename must be durable before an append to the new file is
	// acknowledged, so the directory is synced under the lock.
	if err := syncDir(filepath.Dir(j.path)); err != nil {
		j.log.Error("token journal compaction: syncing the directory failed", "err", err)
	}
	swapped = true
	j.f.Close()
	j.f = f
	tail := j.size - mark
	j.records = len(newest) + int(tail/recordBytes)
	j.size = int64(len(newest))*recordBytes + tail
	j.dirty = false
	return nil
}

// newestRecords reads the records of f before offset end and returns the
// newest one of each registration in alive.
func newestRecords(f *os.File, end int64, alive map[uint64]string) (map[uint64][recordBytes]byte, error) {
	out := make(map[uint64][recordBytes]byte, len(alive))
	r := bufio.NewReaderSize(io.NewSectionReader(f, 0, end), 1<<16)
	var rec [recordBytes]byte
	for {
		if _, err := io.ReadFull(r, rec[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, err
		}
		idx := binary.LittleEndian.Uint64(rec[:8])
		if _, ok := alive[idx]; ok {
			out[idx] = rec
		}
	}
}

// copyRange appends the bytes [from, to) of src to dst.
func copyRange(dst, src *os.File, from, to int64) error {
	if to <= from {
		return nil
	}
	n, err := io.Copy(dst, io.NewSectionReader(src, from, to-from))
	if err == nil && n != to-from {
		err = fmt.Errorf("copied %d bytes of %d", n, to-from)
	}
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func (j *FileJournal) syncLoop() {
	defer close(j.done)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-j.stop:
			return
		case <-t.C:
		}
		// fsync outside the lock: heartbeats append while it runs (fsync and
		// write(2) on one file are safe together). A file that compaction
		// swapped out meanwhile was synced by the compaction itself.
		j.mu.Lock()
		f, dirty := j.f, j.dirty
		j.dirty = false
		j.mu.Unlock()
		if dirty {
			if err := f.Sync(); err != nil && !errors.Is(err, os.ErrClosed) {
				j.log.Error("token journal fsync failed", "err", err)
				j.mu.Lock()
				j.dirty = true // try again next second
				j.mu.Unlock()
			}
		}
		if err := j.compactIfLarge(); err != nil {
			j.log.Error("token journal compaction failed", "err", err)
		}
	}
}

// Close stops the background sync, syncs and closes the file.
func (j *FileJournal) Close() error {
	close(j.stop)
	<-j.done
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.f.Sync(); err != nil {
		j.f.Close()
		return fmt.Errorf("lease: closing token journal: %w", err)
	}
	return j.f.Close()
}
