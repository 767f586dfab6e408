package client

import (
	"math"
	"math/bits"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/muster-registry/muster/api"
)

// An instance list is the largest answer the SDK reads on its hottest call,
// and encoding/json spends most of its time there on reflection, on a
// string allocation per field and on time.Time.UnmarshalJSON.
// decodeInstanceList reads the exact shape the server writes (field order,
// no whitespace, times in UTC) in one pass over the body. The body's buffer
// is reused for the next answer, so the strings kept are copied into a few
// shared arenas, and a tag, endpoint or metadata string seen before is not
// copied again, only shared.
//
// The instances of one answer are mostly alike (one namespace and service,
// the same tags, status and timeout...). So the bytes that runs of fields
// took in the previous instance, keys included, are remembered
// (listScanner.memo), and so are those of each string, list and map field
// with the key after it: when the body continues with the same bytes, the
// fields have the previous instance's values, and one comparison replaces
// scans, key checks and copies. Only the id, the port and the times are
// read every time (heartbeat_timeout is inside a remembered run). Times are read at fixed offsets, a word at a time.
//
// It produces what encoding/json would produce into a zero
// api.List[api.Instance], or reports ok false as soon as it meets anything
// else (an unknown, missing or reordered field, whitespace, an escape, a
// number it does not read, a time in another form, malformed JSON), and the
// caller decodes the body with encoding/json instead. So its correctness
// never rests on the fast path: the fuzz and property tests hold both to
// the same result.

// Fields of an instance whose bytes are remembered from the previous one
// (listScanner.memo). Each step is the field's value and the key that
// follows it, up to the opening quote of the next value when that is a
// string. The port is not remembered on its own: reading a few digits costs
// no more than comparing them (heartbeat_timeout sits inside a run).
const (
	stepNamespace = iota
	stepService
	stepRevision
	stepAddress
	stepPublicURL
	stepEndpoints
	stepTags
	stepMetadata
	stepStatus
	stepCount
)

// Runs of fields that usually all repeat, remembered (in listScanner.memo,
// after the steps) with the key before them and compared as one; when a
// run differs, its fields are read one by one, the strings, lists and maps
// as steps. The id, the port and the times, which differ from one instance
// to the next, part them.
const (
	runNames = stepCount + iota // namespace, service
	runPlace                    // revision_tag, address
	runRest                     // public_url to status
	memoCount
)

// The time fields, each with its own remembered day (listScanner.days).
const (
	timeRegistered = iota
	timeLastHeartbeat
	timeExpires
	timeFields
)

// maxSeen bounds the distinct tags, endpoints and metadata strings shared
// within one answer; beyond it they are copied each time.
const maxSeen = 1024

// listScanner walks one body; i is the offset of the next unread byte.
type listScanner struct {
	s string // the body; nothing returned may refer to it
	i int
	// strs is the current backing array of tags and endpoints; a new one is
	// started when it is full, and slices handed out are capped so that an
	// append by the caller never writes into a neighbour's elements.
	strs []string
	// arena is the current backing array of the bytes of kept strings; a
	// new one is started when it is full, so kept bytes never move.
	arena []byte
	// memo holds, per step and run, the bytes of the body that it took in
	// the previous instance, or the last one where its value differed from
	// the one before (empty before the first): a part of s, never returned.
	memo [memoCount]string
	seen map[string]string
	// days remembers, per time field, the date of the last time parsed.
	days [timeFields]day
}

// decodeInstanceList decodes body, the whole answer of an instance list.
// The result does not refer to body's memory.
func decodeInstanceList(body []byte) (l api.List[api.Instance], ok bool) {
	if len(body) == 0 {
		return l, false
	}
	// The body is only read, and only while decoding.
	d := listScanner{s: unsafe.String(&body[0], len(body))}
	if !d.lit(`{"values":`) {
		return l, false
	}
	if !d.lit("null") {
		if l.Values, ok = d.instances(); !ok {
			return l, false
		}
	}
	if !d.lit(`,"metadata":{"count":`) {
		return l, false
	}
	if l.Metadata.Count, ok = d.int(); !ok {
		return l, false
	}
	if !d.lit(`,"limit":`) {
		return l, false
	}
	if l.Metadata.Limit, ok = d.int(); !ok {
		return l, false
	}
	if !d.lit(`,"next_marker":`) {
		return l, false
	}
	if !d.lit("null") {
		m, ok := d.str()
		if !ok {
			return l, false
		}
		m = d.keep(m)
		l.Metadata.NextMarker = &m
	}
	if !d.lit("}}") || !d.end() {
		return l, false
	}
	return l, true
}

// decodeRegistration decodes body, the answer to a registration: an
// instance's fields and the token. The result does not refer to body's
// memory.
func decodeRegistration(body []byte) (r api.Registration, ok bool) {
	if len(body) == 0 {
		return r, false
	}
	d := listScanner{s: unsafe.String(&body[0], len(body))}
	// With nothing remembered, no field is taken from prev.
	var prev api.Instance
	if !d.instanceFields(&r.Instance, &prev) || !d.lit(`,"token":`) {
		return api.Registration{}, false
	}
	tok, ok := d.str()
	if !ok || !d.lit("}") || !d.end() {
		return api.Registration{}, false
	}
	r.Token = d.keep(tok)
	return r, true
}

// end reports whether only white space is left. What follows the value is
// never read by json.Decoder.Decode; the server ends with a newline.
// Anything else goes the slow way.
func (d *listScanner) end() bool {
	for ; d.i < len(d.s); d.i++ {
		if c := d.s[d.i]; c != '\n' && c != ' ' && c != '\r' && c != '\t' {
			return false
		}
	}
	return true
}

// keep returns a copy of s in the arena.
func (d *listScanner) keep(s string) string {
	if len(s) == 0 {
		return ""
	}
	if len(d.arena)+len(s) > cap(d.arena) {
		d.arena = make([]byte, 0, max(len(d.s)/16, 512, len(s)))
	}
	start := len(d.arena)
	d.arena = append(d.arena, s...)
	// The arena's bytes are never written again once appended.
	return unsafe.String(&d.arena[start], len(s))
}

// shared reads a string of a list or map, shared with an equal one seen
// before in the answer.
func (d *listScanner) shared() (string, bool) {
	s, ok := d.str()
	if !ok {
		return "", false
	}
	if v, ok := d.seen[s]; ok {
		return v, true
	}
	v := d.keep(s)
	if len(d.seen) < maxSeen {
		if d.seen == nil {
			d.seen = make(map[string]string)
		}
		d.seen[v] = v
	}
	return v, true
}

// instances reads a JSON array of instances, d.i at its '['.
func (d *listScanner) instances() ([]api.Instance, bool) {
	if !d.char('[') {
		return nil, false
	}
	out := make([]api.Instance, 0, d.countHint())
	if d.char(']') {
		return out, true
	}
	// Nothing is remembered before the first instance, so its prev is
	// never read.
	prev := new(api.Instance)
	for {
		if len(out) < cap(out) {
			out = out[:len(out)+1] // already zero
		} else {
			out = append(out, api.Instance{})
		}
		v := &out[len(out)-1]
		if !d.instanceFields(v, prev) || !d.char('}') {
			return nil, false
		}
		// If out grows, prev still points into the old array, whose
		// elements stay as they were.
		prev = v
		if d.char(']') {
			return out, true
		}
		if !d.char(',') {
			return nil, false
		}
	}
}

// countHint is the answer's metadata.count, read from the end of the body,
// as the capacity of the values; bounded by the body's size so that a
// wrong count costs nothing.
func (d *listScanner) countHint() int {
	const key = `,"metadata":{"count":`
	j := strings.LastIndex(d.s, key)
	if j < d.i {
		return 0
	}
	n := 0
	for j += len(key); j < len(d.s) && d.s[j] >= '0' && d.s[j] <= '9' && n < 1<<20; j++ {
		n = n*10 + int(d.s[j]-'0')
	}
	return min(n, len(d.s)/64)
}

// instanceFields reads an instance's opening brace and fields, in the
// server's order, up to its closing brace. prev is the instance read
// before, whose values the remembered steps and runs stand for.
func (d *listScanner) instanceFields(v, prev *api.Instance) bool {
	return d.names(v, prev) && d.id(&v.ID) && d.place(v, prev) &&
		d.intInto(&v.Port) && d.rest(v, prev) &&
		d.time(timeRegistered, &v.RegisteredAt) && d.lit(`,"last_heartbeat_at":"`) &&
		d.time(timeLastHeartbeat, &v.LastHeartbeatAt) && d.lit(`,"expires_at":"`) &&
		d.time(timeExpires, &v.ExpiresAt)
}

// names reads the run from the instance's opening brace to the id's
// opening quote: the namespace and the service.
func (d *listScanner) names(v, prev *api.Instance) bool {
	if d.again(runNames) {
		v.Namespace, v.Service = prev.Namespace, prev.Service
		return true
	}
	start := d.i
	if !d.lit(`{"namespace":"`) ||
		!d.strStep(stepNamespace, &v.Namespace, prev.Namespace, `,"service":"`) ||
		!d.strStep(stepService, &v.Service, prev.Service, `,"id":"`) {
		return false
	}
	d.memo[runNames] = d.s[start:d.i]
	return true
}

// place reads the run from the id's closing quote to the port: the
// revision and the address.
func (d *listScanner) place(v, prev *api.Instance) bool {
	if d.again(runPlace) {
		v.RevisionTag, v.Address = prev.RevisionTag, prev.Address
		return true
	}
	start := d.i
	if !d.lit(`,"revision_tag":"`) ||
		!d.strStep(stepRevision, &v.RevisionTag, prev.RevisionTag, `,"address":"`) ||
		!d.strStep(stepAddress, &v.Address, prev.Address, `,"port":`) {
		return false
	}
	d.memo[runPlace] = d.s[start:d.i]
	return true
}

// rest reads the run from the end of the port to the first time's opening
// quote: the public URL, endpoints, tags, metadata, timeout and status.
func (d *listScanner) rest(v, prev *api.Instance) bool {
	if d.again(runRest) {
		v.PublicURL = prev.PublicURL
		v.Endpoints = d.copyStrings(prev.Endpoints)
		v.Tags = d.copyStrings(prev.Tags)
		v.Metadata = copyMap(prev.Metadata)
		v.HeartbeatTimeout, v.Status = prev.HeartbeatTimeout, prev.Status
		return true
	}
	start := d.i
	if !d.lit(`,"public_url":"`) ||
		!d.strStep(stepPublicURL, &v.PublicURL, prev.PublicURL, `,"endpoints":`) ||
		!d.stringsStep(stepEndpoints, &v.Endpoints, prev.Endpoints, `,"tags":`) ||
		!d.stringsStep(stepTags, &v.Tags, prev.Tags, `,"metadata":`) ||
		!d.mapStep(stepMetadata, &v.Metadata, prev.Metadata, `,"heartbeat_timeout":`) ||
		!d.intInto(&v.HeartbeatTimeout) || !d.lit(`,"status":"`) ||
		!d.strStep(stepStatus, &v.Status, prev.Status, `,"registered_at":"`) {
		return false
	}
	d.memo[runRest] = d.s[start:d.i]
	return true
}

// again reports whether the body continues with the bytes step or run k
// took in the previous instance, and if so skips them. The same bytes read from
// the same point give the same values, so the caller takes the previous
// instance's.
func (d *listScanner) again(k int) bool {
	m := d.memo[k]
	if len(m) == 0 || len(d.s)-d.i < len(m) || d.s[d.i:d.i+len(m)] != m {
		return false
	}
	d.i += len(m)
	return true
}

// strStep reads a string field, d.i after its opening quote, and the key
// after it; prev is the field's value in the previous instance.
func (d *listScanner) strStep(k int, p *string, prev, key string) bool {
	if d.again(k) {
		*p = prev
		return true
	}
	start := d.i
	s, ok := d.strRest()
	if !ok || !d.lit(key) {
		return false
	}
	// Not the previous value (that would have been again), or the first.
	*p = d.keep(s)
	d.memo[k] = d.s[start:d.i]
	return true
}

// stringsStep reads a list field and the key after it; prev is the
// field's value in the previous instance, whose elements are copied (each
// instance has its own).
func (d *listScanner) stringsStep(k int, p *[]string, prev []string, key string) bool {
	if d.again(k) {
		*p = d.copyStrings(prev)
		return true
	}
	start := d.i
	if !d.strings(p) || !d.lit(key) {
		return false
	}
	d.memo[k] = d.s[start:d.i]
	return true
}

// mapStep reads a map field and the key after it; prev is the field's
// value in the previous instance, which is copied (each instance has its
// own).
func (d *listScanner) mapStep(k int, p *map[string]string, prev map[string]string, key string) bool {
	if d.again(k) {
		*p = copyMap(prev)
		return true
	}
	start := d.i
	if !d.stringMap(p) || !d.lit(key) {
		return false
	}
	d.memo[k] = d.s[start:d.i]
	return true
}

// copyMap returns a copy of m: nil for nil.
func copyMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	if len(m) == 0 {
		return make(map[string]string)
	}
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// id reads the id, d.i after its opening quote. Ids differ from one
// instance to the next: it is not compared with the previous one.
func (d *listScanner) id(p *string) bool {
	s, ok := d.strRest()
	*p = d.keep(s)
	return ok
}

// lit consumes want if the body continues with it.
func (d *listScanner) lit(want string) bool {
	if !strings.HasPrefix(d.s[d.i:], want) {
		return false
	}
	d.i += len(want)
	return true
}

// char consumes c if the body continues with it.
func (d *listScanner) char(c byte) bool {
	if d.i >= len(d.s) || d.s[d.i] != c {
		return false
	}
	d.i++
	return true
}

// str reads a JSON string without escapes, d.i at its opening quote.
func (d *listScanner) str() (string, bool) {
	if !d.char('"') {
		return "", false
	}
	return d.strRest()
}

// strRest reads the rest of a JSON string without escapes, d.i after its
// opening quote, up to and including the closing one. A control character
// or a backslash is left to encoding/json (an error or an escape), and so
// is invalid UTF-8, which it replaces. Eight bytes at a time are checked
// for anything but printable ASCII other than '"' and '\\'.
func (d *listScanner) strRest() (string, bool) {
	start := d.i
	ascii := true
	for j := start; ; j++ {
		for j+8 <= len(d.s) {
			// The lowest flagged byte is the first special one (a false
			// flag only ever follows a true one).
			if m := special(load64(d.s, j)); m != 0 {
				j += bits.TrailingZeros64(m) / 8
				break
			}
			j += 8
		}
		if j >= len(d.s) {
			return "", false
		}
		switch c := d.s[j]; {
		case c == '"':
			s := d.s[start:j]
			if !ascii && !utf8.ValidString(s) {
				return "", false
			}
			d.i = j + 1
			return s, true
		case c == '\\' || c < 0x20:
			return "", false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
}

// load64 reads 8 bytes of s from i, little-endian (the compiler makes it
// one load).
func load64(s string, i int) uint64 {
	b := s[i : i+8]
	return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
		uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
}

// special is not zero when a byte of x is '"', '\\', below 0x20 or above
// 0x7f (the classic bit tricks: y has a zero byte when (y-0x01…)&^y&0x80…
// is not zero, and a byte below n when (x-n…)&^x&0x80… is not zero).
func special(x uint64) uint64 {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	q := x ^ (lo * '"')
	b := x ^ (lo * '\\')
	return ((q-lo) & ^q | (b-lo) & ^b | (x-lo*0x20) & ^x | x) & hi
}

// int reads an integer that fits an int, as encoding/json reads one;
// anything else, such as 1.0, 1e3 or 2^63, which encoding/json refuses for
// an int, goes the slow way.
func (d *listScanner) int() (int, bool) {
	s, j := d.s, d.i
	neg := j < len(s) && s[j] == '-'
	if neg {
		j++
	}
	start := j
	u := uint64(0) // 19 digits never wrap it; more are refused
	for ; j < len(s); j++ {
		c := s[j] - '0'
		if c > 9 {
			break
		}
		u = u*10 + uint64(c)
	}
	digits := j - start
	limit := uint64(math.MaxInt64)
	if neg {
		limit++ // -2^63
	}
	if digits == 0 || digits > 19 || (digits > 1 && s[start] == '0') || u > limit {
		return 0, false
	}
	n := int64(u) // -2^63 for 2^63, which negated stays -2^63
	if neg {
		n = -n
	}
	if int64(int(n)) != n { // 32-bit platforms
		return 0, false
	}
	if j < len(s) {
		if c := s[j]; c == '.' || c == 'e' || c == 'E' {
			return 0, false
		}
	}
	d.i = j
	return int(n), true
}

// intInto reads an integer into p.
func (d *listScanner) intInto(p *int) bool {
	n, ok := d.int()
	*p = n
	return ok
}

// strings reads null (a nil slice) or an array of strings (an empty array
// is an empty, non-nil slice, as encoding/json makes it).
func (d *listScanner) strings(p *[]string) bool {
	if d.lit("null") {
		*p = nil
		return true
	}
	if !d.char('[') {
		return false
	}
	if d.char(']') {
		*p = []string{}
		return true
	}
	start := len(d.strs)
	for {
		s, ok := d.shared()
		if !ok {
			return false
		}
		if len(d.strs) == cap(d.strs) {
			// Start a new backing array and move this list's first
			// elements to it, so that the list stays contiguous.
			moved := d.strs[start:]
			d.strs = make([]string, 0, max(64, 2*len(moved)+1))
			d.strs = append(d.strs, moved...)
			start = 0
		}
		d.strs = append(d.strs, s)
		if d.char(']') {
			end := len(d.strs)
			*p = d.strs[start:end:end]
			return true
		}
		if !d.char(',') {
			return false
		}
	}
}

// copyStrings returns a copy of ss in the backing array of lists: nil for
// nil, and an empty list as it is (it has no elements to share).
func (d *listScanner) copyStrings(ss []string) []string {
	if len(ss) == 0 {
		return ss
	}
	if cap(d.strs)-len(d.strs) < len(ss) {
		d.strs = make([]string, 0, max(64, 2*len(ss)))
	}
	start := len(d.strs)
	d.strs = append(d.strs, ss...)
	end := len(d.strs)
	return d.strs[start:end:end]
}

// stringMap reads null (a nil map) or an object of strings. A repeated key
// keeps its last value, as with encoding/json.
func (d *listScanner) stringMap(p *map[string]string) bool {
	if d.lit("null") {
		*p = nil
		return true
	}
	if !d.char('{') {
		return false
	}
	m := make(map[string]string)
	*p = m
	if d.char('}') {
		return true
	}
	for {
		k, ok := d.shared()
		if !ok || !d.char(':') {
			return false
		}
		v, ok := d.shared()
		if !ok {
			return false
		}
		m[k] = v
		if d.char('}') {
			return true
		}
		if !d.char(',') {
			return false
		}
	}
}
