package fsm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/muster-registry/muster/internal/state"
)

// RegisterInstance is the command every registration commits, so its body
// is written and read by hand rather than as JSON (which cost more than
// the rest of its apply). The body after the type byte starts with
// registerBinV1, which no JSON body starts with, so entries written as
// JSON by earlier binaries still decode. Layout, integers as varints and
// strings as a uvarint length and the bytes, times as their RFC 3339 text
// (so that they decode exactly as from JSON), lists and metadata as a count
// and their items, an absent ReplaceDead as 0:
//
//	0x01 time replace(0|1) namespace service id revision_tag address port
//	heartbeat_timeout public_url endpoints tags metadata registered_at
//	reg_index token [0 | 1 dead_namespace dead_service dead_id
//	dead_reg_index dead_deadline]
//
// Lists and metadata that are empty decode as nil, as the JSON, which
// leaves them out, does.
const registerBinV1 = 0x01

// errBinBody is the cause of every error decoding a binary body.
var errBinBody = errors.New("malformed binary command body")

func encodeRegisterInstance(c *RegisterInstance) ([]byte, error) {
	inst := &c.Instance
	w := binWriter{b: make([]byte, 0, 256)}
	w.b = append(w.b, byte(TypeRegisterInstance), registerBinV1)
	w.time(c.Time)
	w.boolean(c.Replace)
	w.str(inst.Namespace)
	w.str(inst.Service)
	w.str(inst.ID)
	w.str(inst.RevisionTag)
	w.str(inst.Address)
	w.varint(int64(inst.Port))
	w.varint(int64(inst.HeartbeatTimeout))
	w.str(inst.PublicURL)
	w.strs(inst.Endpoints)
	w.strs(inst.Tags)
	w.uvarint(uint64(len(inst.Metadata)))
	for _, p := range inst.Metadata {
		w.str(p.Key)
		w.str(p.Value)
	}
	w.time(inst.RegisteredAt)
	w.uvarint(inst.RegIndex)
	w.str(inst.Token)
	if d := c.ReplaceDead; d == nil {
		w.boolean(false)
	} else {
		w.boolean(true)
		w.str(d.Key.Namespace)
		w.str(d.Key.Service)
		w.str(d.Key.ID)
		w.uvarint(d.RegIndex)
		w.time(d.Deadline)
	}
	if w.err != nil {
		return nil, fmt.Errorf("fsm: encoding command %d: %w", TypeRegisterInstance, w.err)
	}
	return w.b, nil
}

// decodeRegisterInstance reads body, what follows the type byte and
// registerBinV1.
func decodeRegisterInstance(body []byte) (*RegisterInstance, error) {
	r := binReader{b: body}
	c := &RegisterInstance{}
	inst := &c.Instance
	c.Time = r.time()
	c.Replace = r.boolean()
	inst.Namespace, inst.Service, inst.ID = r.str(), r.str(), r.str()
	inst.RevisionTag, inst.Address = r.str(), r.str()
	inst.Port, inst.HeartbeatTimeout = r.int32(), r.int32()
	inst.PublicURL = r.str()
	inst.Endpoints, inst.Tags = r.strs(), r.strs()
	if n := r.count(); n > 0 {
		inst.Metadata = make(state.Metadata, n)
		for i := range inst.Metadata {
			inst.Metadata[i].Key, inst.Metadata[i].Value = r.str(), r.str()
		}
	}
	inst.RegisteredAt = r.time()
	inst.RegIndex = r.uvarint()
	inst.Token = r.str()
	if r.boolean() {
		d := &state.Expiry{}
		d.Key.Namespace, d.Key.Service, d.Key.ID = r.str(), r.str(), r.str()
		d.RegIndex = r.uvarint()
		d.Deadline = r.time()
		c.ReplaceDead = d
	}
	if r.err == nil && len(r.b) > 0 {
		r.fail("%d bytes after the command", len(r.b))
	}
	if r.err != nil {
		return nil, fmt.Errorf("fsm: decoding command %d: %w", TypeRegisterInstance, r.err)
	}
	return c, nil
}

// binWriter appends the encoding; the first error sticks.
type binWriter struct {
	b   []byte
	err error
}

func (w *binWriter) uvarint(v uint64) { w.b = binary.AppendUvarint(w.b, v) }
func (w *binWriter) varint(v int64)   { w.b = binary.AppendVarint(w.b, v) }

func (w *binWriter) str(s string) {
	w.uvarint(uint64(len(s)))
	w.b = append(w.b, s...)
}

func (w *binWriter) boolean(v bool) {
	if v {
		w.b = append(w.b, 1)
	} else {
		w.b = append(w.b, 0)
	}
}

func (w *binWriter) strs(ss []string) {
	w.uvarint(uint64(len(ss)))
	for _, s := range ss {
		w.str(s)
	}
}

func (w *binWriter) time(t time.Time) {
	b, err := t.MarshalText()
	if err != nil && w.err == nil {
		w.err = err
	}
	w.str(string(b))
}

// binReader reads the encoding; the first error sticks, and later reads
// answer zero values.
type binReader struct {
	b   []byte
	err error
}

func (r *binReader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: "+format, append([]any{errBinBody}, args...)...)
	}
	r.b = nil
}

func (r *binReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("bad unsigned varint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *binReader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail("bad varint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

// int32 reads a varint that must fit an int32 (ports, timeouts).
func (r *binReader) int32() int32 {
	v := r.varint()
	if int64(int32(v)) != v {
		r.fail("%d does not fit 32 bits", v)
		return 0
	}
	return int32(v)
}

// count reads a length or count, which cannot exceed the bytes left.
func (r *binReader) count() int {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.fail("length %d with %d bytes left", n, len(r.b))
		return 0
	}
	return int(n)
}

func (r *binReader) str() string {
	n := r.count()
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func (r *binReader) byte() byte {
	if len(r.b) == 0 {
		r.fail("missing byte")
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *binReader) boolean() bool {
	if len(r.b) == 0 {
		r.fail("missing boolean")
		return false
	}
	v := r.b[0]
	r.b = r.b[1:]
	if v > 1 {
		r.fail("boolean %d", v)
	}
	return v == 1
}

// strs reads a list; an empty one is nil.
func (r *binReader) strs() []string {
	n := r.count()
	if n == 0 {
		return nil
	}
	ss := make([]string, n)
	for i := range ss {
		ss[i] = r.str()
	}
	return ss
}

func (r *binReader) time() time.Time {
	b := r.b[:r.count()]
	r.b = r.b[len(b):]
	var t time.Time
	if err := t.UnmarshalText(b); err != nil {
		r.fail("time: %v", err)
	}
	return t
}
