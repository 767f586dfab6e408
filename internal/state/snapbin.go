package state

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"time"
)

// The binary snapshot (version 2). A restart reads a million instances from
// it, so it is written and read by hand, field by field, without reflection:
// integers as varints, strings and byte strings as a uvarint length and the
// bytes, times as Unix seconds, nanoseconds and zone offset. Layout:
//
//	magic (8 bytes) | version (uvarint)
//	last event id | service count | event count
//	per event: id, type, namespace, service, time, payload
//	per service: namespace, name, default tag, policy JSON, definition JSON,
//	  revisions (count; tag, created, metadata, not-default),
//	  instances (count; see writeInstance), sorted by id
//
// Restore tells it from the JSON snapshot of version 1 by its first bytes.

// snapMagic opens a binary snapshot; a JSON snapshot opens with '{'.
const snapMagic = "MUSTERSS"

// snapshotVersion is the version of the snapshots WriteTo writes.
const snapshotVersion = 2

// maxSnapString bounds one string or byte string of a snapshot: far above
// anything the API accepts, it stops a corrupt length from allocating
// gigabytes before the read fails.
const maxSnapString = 64 << 20

// errSnapCorrupt is wrapped by every refusal of a malformed binary snapshot.
var errSnapCorrupt = errors.New("state: corrupt snapshot")

// snapWriter writes the binary encoding; the first error sticks.
type snapWriter struct {
	w   *bufio.Writer
	buf [binary.MaxVarintLen64]byte
	err error
}

func (w *snapWriter) uvarint(v uint64) {
	if w.err == nil {
		_, w.err = w.w.Write(binary.AppendUvarint(w.buf[:0], v))
	}
}

func (w *snapWriter) varint(v int64) {
	if w.err == nil {
		_, w.err = w.w.Write(binary.AppendVarint(w.buf[:0], v))
	}
}

func (w *snapWriter) str(s string) {
	w.uvarint(uint64(len(s)))
	if w.err == nil {
		_, w.err = w.w.WriteString(s)
	}
}

func (w *snapWriter) bytes(b []byte) {
	w.uvarint(uint64(len(b)))
	if w.err == nil {
		_, w.err = w.w.Write(b)
	}
}

func (w *snapWriter) boolean(b bool) {
	if b {
		w.uvarint(1)
	} else {
		w.uvarint(0)
	}
}

func (w *snapWriter) time(t time.Time) {
	_, off := t.Zone()
	w.varint(t.Unix())
	w.uvarint(uint64(t.Nanosecond()))
	w.varint(int64(off))
}

func (w *snapWriter) strs(ss []string) {
	w.uvarint(uint64(len(ss)))
	for _, s := range ss {
		w.str(s)
	}
}

func (w *snapWriter) pairs(md Metadata) {
	w.uvarint(uint64(len(md)))
	for _, p := range md {
		w.str(p.Key)
		w.str(p.Value)
	}
}

// writeInstance writes the fields of inst that its service does not give,
// the four strings that no other record shares first.
func (w *snapWriter) writeInstance(inst *Instance) {
	w.str(inst.ID)
	w.str(inst.Address)
	w.str(inst.PublicURL)
	w.str(inst.Token)
	w.str(inst.RevisionTag)
	w.varint(int64(inst.Port))
	w.strs(inst.Endpoints)
	w.strs(inst.Tags)
	w.pairs(inst.Metadata)
	w.varint(int64(inst.HeartbeatTimeout))
	w.time(inst.RegisteredAt)
	w.uvarint(inst.RegIndex)
}

// snapReader reads the binary encoding; the first error sticks, and a
// later read returns zero values.
type snapReader struct {
	r   *bufio.Reader
	err error
	in  *interner
	// scratch for the strings of one instance that no other holds (id,
	// address, public URL, token): they are read into one buffer and become
	// one allocation.
	own  []byte
	tags []string
}

func (r *snapReader) fail(err error) {
	if r.err == nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		r.err = fmt.Errorf("%w: %w", errSnapCorrupt, err)
	}
}

func (r *snapReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, err := binary.ReadUvarint(r.r)
	if err != nil {
		r.fail(err)
	}
	return v
}

func (r *snapReader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, err := binary.ReadVarint(r.r)
	if err != nil {
		r.fail(err)
	}
	return v
}

// int32 reads a varint that must fit an int32 (ports, timeouts).
func (r *snapReader) int32() int32 {
	v := r.varint()
	if v < math.MinInt32 || v > math.MaxInt32 {
		r.fail(fmt.Errorf("integer %d out of range", v))
		return 0
	}
	return int32(v)
}

// count reads a length or count, refusing one above limit.
func (r *snapReader) count(limit uint64) int {
	n := r.uvarint()
	if n > limit {
		r.fail(fmt.Errorf("length %d is more than %d", n, limit))
		return 0
	}
	return int(n)
}

// raw returns the next n bytes, valid until the next read.
func (r *snapReader) raw() []byte {
	n := r.count(maxSnapString)
	if r.err != nil || n == 0 {
		return nil
	}
	if n <= r.r.Size() {
		b, err := r.r.Peek(n)
		if err != nil {
			r.fail(err)
			return nil
		}
		_, _ = r.r.Discard(n) // Peek returned n bytes: Discard cannot fail
		return b
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r.r, b); err != nil {
		r.fail(err)
		return nil
	}
	return b
}

// str reads a string that many records may share: through the interner.
func (r *snapReader) str() string { return r.in.strBytes(r.raw()) }

// fresh reads a string of its own.
func (r *snapReader) fresh() string { return string(r.raw()) }

func (r *snapReader) boolean() bool {
	switch r.uvarint() {
	case 0:
		return false
	case 1:
		return true
	default:
		r.fail(errors.New("boolean is neither 0 nor 1"))
		return false
	}
}

func (r *snapReader) time() time.Time {
	sec, nsec, off := r.varint(), r.uvarint(), r.varint()
	if nsec >= 1e9 || off < -24*3600 || off > 24*3600 {
		r.fail(fmt.Errorf("time %d.%d%+d out of range", sec, nsec, off))
		return time.Time{}
	}
	t := time.Unix(sec, int64(nsec)).UTC()
	if off != 0 {
		t = t.In(time.FixedZone("", int(off)))
	}
	return t
}

// strs reads a string list of its own (nil when empty).
func (r *snapReader) strs() []string {
	n := r.count(maxSnapString)
	if n == 0 {
		return nil
	}
	ss := make([]string, 0, min(n, 1024))
	for i := 0; i < n && r.err == nil; i++ { // a corrupt count ends at the first failed read
		ss = append(ss, r.fresh())
	}
	return ss
}

// tagList reads a tag list, shared with equal lists (nil when empty).
func (r *snapReader) tagList() []string {
	n := r.count(maxSnapString)
	if n == 0 {
		return nil
	}
	r.tags = r.tags[:0]
	for i := 0; i < n && r.err == nil; i++ {
		r.tags = append(r.tags, r.str())
	}
	return r.in.tagList(r.tags)
}

func (r *snapReader) pairs() Metadata {
	n := r.count(maxSnapString)
	if n == 0 {
		return nil
	}
	md := make(Metadata, 0, min(n, 1024))
	for i := 0; i < n && r.err == nil; i++ {
		k := r.str()
		v := r.raw()
		if len(v) <= maxInternedValue {
			md = append(md, Pair{Key: k, Value: r.in.strBytes(v)})
		} else {
			md = append(md, Pair{Key: k, Value: string(v)})
		}
	}
	if r.err == nil && !md.valid() {
		r.fail(errors.New("metadata keys not sorted"))
	}
	return md
}

// ownStrings reads len(out) strings into one allocation.
func (r *snapReader) ownStrings(out ...*string) {
	ends := make([]int, 0, 4)
	r.own = r.own[:0]
	for range out {
		r.own = append(r.own, r.raw()...)
		ends = append(ends, len(r.own))
	}
	all, start := string(r.own), 0
	for i, p := range out {
		*p = all[start:ends[i]]
		start = ends[i]
	}
}

// readInstance reads what writeInstance wrote.
func (r *snapReader) readInstance(k Key) *Instance {
	inst := &Instance{Namespace: k.Namespace, Service: k.Name}
	r.ownStrings(&inst.ID, &inst.Address, &inst.PublicURL, &inst.Token)
	inst.RevisionTag = r.str()
	inst.Port = r.int32()
	inst.Endpoints = r.strs()
	inst.Tags = r.tagList()
	inst.Metadata = r.pairs()
	inst.HeartbeatTimeout = r.int32()
	inst.RegisteredAt = r.time()
	inst.RegIndex = r.uvarint()
	return inst
}
