package client

import (
	"math/bits"
	"strings"
	"time"
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
// shared arenas, and a value equal to the same field's value in the
// previous instance (namespace, service, status...) or to a tag, endpoint
// or metadata string seen before is not copied again, only shared. Times
// are parsed by hand.
//
// It produces what encoding/json would produce into a zero
// api.List[api.Instance], or reports ok false as soon as it meets anything
// else (an unknown, missing or reordered field, whitespace, an escape, a
// number it does not read, a time in another form, malformed JSON), and the
// caller decodes the body with encoding/json instead. So its correctness
// never rests on the fast path: the fuzz and property tests hold both to
// the same result.

// Scalar string fields whose last value is remembered (listScanner.prev).
const (
	fieldNamespace = iota
	fieldService
	fieldID
	fieldRevision
	fieldAddress
	fieldPublicURL
	fieldStatus
	fieldCount
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
	prev  [fieldCount]string
	seen  map[string]string
	// day is the date part of the last time parsed, dayUnix its midnight.
	day     string
	dayUnix int64
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
	if !d.instanceFields(&r.Instance) || !d.lit(`,"token":`) {
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

// field reads a string of scalar field f, shared with the previous
// instance's value when equal.
func (d *listScanner) field(f int, p *string) bool {
	// The previous value has been through str, so the same bytes between
	// quotes would give the same string: compare instead of scanning.
	if prev := d.prev[f]; d.i+len(prev)+2 <= len(d.s) && d.s[d.i] == '"' && d.s[d.i+1+len(prev)] == '"' && d.s[d.i+1:d.i+1+len(prev)] == prev {
		d.i += len(prev) + 2
		*p = prev
		return true
	}
	s, ok := d.str()
	if !ok {
		return false
	}
	if s != d.prev[f] {
		d.prev[f] = d.keep(s)
	}
	*p = d.prev[f]
	return true
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
	if !d.lit("[") {
		return nil, false
	}
	out := make([]api.Instance, 0, d.countHint())
	if d.lit("]") {
		return out, true
	}
	for {
		if len(out) < cap(out) {
			out = out[:len(out)+1] // already zero
		} else {
			out = append(out, api.Instance{})
		}
		if !d.instance(&out[len(out)-1]) {
			return nil, false
		}
		if d.lit("]") {
			return out, true
		}
		if !d.lit(",") {
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

// instance reads one instance in the server's field order.
func (d *listScanner) instance(v *api.Instance) bool {
	return d.instanceFields(v) && d.lit("}")
}

// instanceFields reads an instance's opening brace and fields, in the
// server's order, up to its closing brace.
func (d *listScanner) instanceFields(v *api.Instance) bool {
	ok := d.lit(`{"namespace":`) && d.field(fieldNamespace, &v.Namespace) &&
		d.lit(`,"service":`) && d.field(fieldService, &v.Service) &&
		d.lit(`,"id":`) && d.field(fieldID, &v.ID) &&
		d.lit(`,"revision_tag":`) && d.field(fieldRevision, &v.RevisionTag) &&
		d.lit(`,"address":`) && d.field(fieldAddress, &v.Address) &&
		d.lit(`,"port":`) && d.intInto(&v.Port) &&
		d.lit(`,"public_url":`) && d.field(fieldPublicURL, &v.PublicURL) &&
		d.lit(`,"endpoints":`) && d.strings(&v.Endpoints) &&
		d.lit(`,"tags":`) && d.strings(&v.Tags) &&
		d.lit(`,"metadata":`) && d.stringMap(&v.Metadata) &&
		d.lit(`,"heartbeat_timeout":`) && d.intInto(&v.HeartbeatTimeout) &&
		d.lit(`,"status":`) && d.field(fieldStatus, &v.Status) &&
		d.lit(`,"registered_at":`) && d.timeInto(&v.RegisteredAt) &&
		d.lit(`,"last_heartbeat_at":`) && d.timeInto(&v.LastHeartbeatAt) &&
		d.lit(`,"expires_at":`) && d.timeInto(&v.ExpiresAt)
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

// str reads a JSON string without escapes. A control character or a
// backslash is left to encoding/json (an error or an escape), and so is
// invalid UTF-8, which it replaces. Eight bytes at a time are checked for
// anything but printable ASCII other than '"' and '\\'.
func (d *listScanner) str() (string, bool) {
	if d.i >= len(d.s) || d.s[d.i] != '"' {
		return "", false
	}
	start := d.i + 1
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

// int reads an integer of at most 18 digits (so it fits an int on 64-bit
// platforms without a check); anything else, such as 1.0 or 1e3, which
// encoding/json refuses for an int, goes the slow way.
func (d *listScanner) int() (int, bool) {
	j := d.i
	neg := j < len(d.s) && d.s[j] == '-'
	if neg {
		j++
	}
	start := j
	n := int64(0)
	for ; j < len(d.s) && d.s[j] >= '0' && d.s[j] <= '9'; j++ {
		n = n*10 + int64(d.s[j]-'0')
	}
	digits := j - start
	if digits == 0 || digits > 18 || (digits > 1 && d.s[start] == '0') || int64(int(n)) != n {
		return 0, false
	}
	if j < len(d.s) {
		if c := d.s[j]; c == '.' || c == 'e' || c == 'E' {
			return 0, false
		}
	}
	d.i = j
	if neg {
		n = -n
	}
	return int(n), true
}

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
	if !d.lit("[") {
		return false
	}
	if d.lit("]") {
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
		if d.lit("]") {
			end := len(d.strs)
			*p = d.strs[start:end:end]
			return true
		}
		if !d.lit(",") {
			return false
		}
	}
}

// stringMap reads null (a nil map) or an object of strings. A repeated key
// keeps its last value, as with encoding/json.
func (d *listScanner) stringMap(p *map[string]string) bool {
	if d.lit("null") {
		*p = nil
		return true
	}
	if !d.lit("{") {
		return false
	}
	m := make(map[string]string)
	*p = m
	if d.lit("}") {
		return true
	}
	for {
		k, ok := d.shared()
		if !ok || !d.lit(":") {
			return false
		}
		v, ok := d.shared()
		if !ok {
			return false
		}
		m[k] = v
		if d.lit("}") {
			return true
		}
		if !d.lit(",") {
			return false
		}
	}
}

// timeInto reads a time string. parseTime checks every byte of it, so the
// string needs no scan of its own: only its end is looked for.
func (d *listScanner) timeInto(p *time.Time) bool {
	if d.i >= len(d.s) || d.s[d.i] != '"' {
		return false
	}
	rest := d.s[d.i+1:]
	n := strings.IndexByte(rest[:min(len(rest), len("2006-01-02T15:04:05.999999999Z")+1)], '"')
	if n < 0 {
		return false
	}
	t, ok := d.parseTime(rest[:n])
	if !ok {
		return false
	}
	*p = t
	d.i += n + 2
	return true
}

// parseTime parses the form the server writes, RFC 3339 in UTC with 0 to 9
// digits of fraction: 2006-01-02T15:04:05.999999999Z. It refuses anything
// else, including values time.Parse would refuse (day 31 of a 30-day month,
// hour 24), which the caller then leaves to encoding/json. The times of
// one answer mostly fall on one day: the day last parsed is remembered.
func (d *listScanner) parseTime(s string) (time.Time, bool) {
	const base = len("2006-01-02T15:04:05Z")
	if len(s) < base || len(s) == base+1 || len(s) > base+10 ||
		s[10] != 'T' || s[13] != ':' || s[16] != ':' || s[len(s)-1] != 'Z' {
		return time.Time{}, false
	}
	if s[:10] != d.day {
		midnight, ok := parseDay(s[:10])
		if !ok {
			return time.Time{}, false
		}
		d.day, d.dayUnix = s[:10], midnight
	}
	hour, ok1 := digits2(s, 11)
	minute, ok2 := digits2(s, 14)
	sec, ok3 := digits2(s, 17)
	if !(ok1 && ok2 && ok3) || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	nsec := 0
	if len(s) > base {
		if s[19] != '.' {
			return time.Time{}, false
		}
		frac := s[20 : len(s)-1]
		n, ok := digits(frac)
		if !ok {
			return time.Time{}, false
		}
		for range 9 - len(frac) {
			n *= 10
		}
		nsec = n
	}
	// time.Unix(…).UTC() is the same value as time.Date(…, time.UTC).
	return time.Unix(d.dayUnix+int64(hour*3600+minute*60+sec), int64(nsec)).UTC(), true
}

// parseDay parses 2006-01-02 into the Unix time of its midnight, UTC.
func parseDay(s string) (int64, bool) {
	if len(s) != 10 || s[4] != '-' || s[7] != '-' {
		return 0, false
	}
	year, ok1 := digits(s[0:4])
	month, ok2 := digits2(s, 5)
	day, ok3 := digits2(s, 8)
	if !(ok1 && ok2 && ok3) || month < 1 || month > 12 || day < 1 || day > daysIn(month, year) {
		return 0, false
	}
	return time.Date(year, time.Month(month), day, 0, 0, 0, 0, time.UTC).Unix(), true
}

// digits2 parses the two decimal digits of s at i.
func digits2(s string, i int) (int, bool) {
	a, b := s[i]-'0', s[i+1]-'0'
	return int(a)*10 + int(b), a <= 9 && b <= 9
}

// digits parses a run of 1 to 9 decimal digits.
func digits(s string) (int, bool) {
	if len(s) == 0 || len(s) > 9 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// daysIn is the number of days of month in year (proleptic Gregorian).
func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}
