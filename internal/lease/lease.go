// Package lease keeps heartbeat deadlines and tokens outside the replicated
// log, as etcd's lessor keeps lease TTLs: heartbeats only touch memory (and an
// append to the token journal), and only the leader decides expiries, which
// leave through a channel in bounded batches for the server to commit.
//
// The table mirrors the state's live registrations: the state tells it of every
// registration that starts or ends (it implements state.Observer), on every
// node, so a node that becomes leader already knows every instance. On
// promotion every deadline is reset to now + its timeout, so a restart or a
// change of leader never mass-expires a healthy fleet.
package lease

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"hash/maphash"
	"log/slog"
	mrand "math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/muster-registry/muster/internal/registry"
	"github.com/muster-registry/muster/internal/state"
)

const (
	shardCount = 64
	// tick is the resolution of the deadline wheel and the reaper's period.
	tick = 100 * time.Millisecond
	// DefaultBatch is the most expiries committed in one command.
	DefaultBatch = 5000
	// versionStripes is the number of service versions (see ServiceVersion);
	// services that share a stripe only invalidate each other's caches.
	versionStripes = 256
)

// Table tracks the deadline and current token of every live registration.
//
// Concurrency: all methods are safe for concurrent use. The state.Observer
// methods are called by the FSM under the state's write lock; they take only
// the table's own shard locks and never call back into the state.
type Table struct {
	seed maphash.Seed
	// keyHash places a key in a shard and in the shard's map; tests may
	// replace it (before first use) to make keys collide.
	keyHash func(state.InstanceKey) uint64
	shards  [shardCount]shard
	journal Journal
	// restored holds the newest token per registration read from the journal
	// at start; a registration replayed from the log takes it over. It is
	// dropped at the first promotion, once the log has been replayed: kept
	// longer, a later restore would bring back tokens spent since.
	restored atomic.Pointer[map[uint64]string]
	log      *slog.Logger
	now      func() time.Time
	batch    int

	leader  atomic.Bool
	expired chan []state.Expiry
	mu      sync.Mutex // guards cancel and reaped
	cancel  chan struct{}
	reaped  chan struct{} // closed when the current reaper has returned

	// versions[i] counts the lease changes that no state write reports
	// (renewals, undone renewals, resets) of the services of stripe i.
	versions [versionStripes]atomic.Uint64
}

// A million registrations make the table one of the largest structures in
// memory, so it keeps little per registration: the map is keyed by a 64-bit
// hash of the instance key rather than by the key's three strings, the entry
// points at the stored registration (key, RegIndex, timeout) rather than
// copying it, times are Unix nanoseconds, and the wheel holds entry pointers.
type shard struct {
	mu sync.Mutex
	// entries holds the registrations by the hash of their key. A key whose
	// hash is taken by another live key goes to collided instead (with 64
	// bits, practically never): get looks there when entries has no match.
	entries  map[uint64]*entry
	collided map[state.InstanceKey]*entry
	// tokens is the shard's source of rotated tokens: a ChaCha8 stream
	// seeded from crypto/rand (a CSPRNG, so tokens stay unguessable), read
	// under mu, without the cost of a crypto/rand read per heartbeat.
	tokens *mrand.ChaCha8
	// wheel maps a deadline tick to the entries whose deadline fell in it
	// when it was set. References are not removed when a deadline moves or an
	// entry leaves the table: the reaper checks the entry's current deadline
	// and whether it was removed, and drops stale references.
	wheel map[int64][]ref
	// peek is the wheel's references under peekTick, the tick under way
	// that the reaper looks into every round, kept by file and resetWheel
	// so that those rounds need no map lookup (a cold map, a cache miss or
	// several each, for every shard, fifty times a second).
	peekTick int64
	peek     []ref
}

// ref is a wheel reference: the entry and its deadline when it was filed,
// so that a round looking into the tick under way passes over the
// deadlines still to come without reading their entries.
type ref struct {
	e        *entry
	deadline int64 // Unix nanoseconds
}

// file adds e to the wheel under tick b.
func (s *shard) file(b int64, e *entry) {
	refs := append(s.wheel[b], ref{e, e.deadline})
	s.wheel[b] = refs
	if b == s.peekTick {
		s.peek = refs
	}
}

// resetWheel empties the wheel.
func (s *shard) resetWheel() {
	s.wheel = make(map[int64][]ref)
	s.peek = nil
}

type entry struct {
	// inst is the stored registration (immutable): its key, RegIndex and
	// heartbeat timeout. A patch of the timeout swaps in the new record.
	inst     *state.Instance
	token    string
	lastBeat int64 // Unix nanoseconds
	deadline int64 // Unix nanoseconds
	expiring bool
	removed  bool // left the table: wheel references to it are stale
}

func (e *entry) is(k state.InstanceKey) bool {
	return e.inst.ID == k.ID && e.inst.Service == k.Service && e.inst.Namespace == k.Namespace
}

func (e *entry) timeout() time.Duration {
	return time.Duration(e.inst.HeartbeatTimeout) * time.Second
}

// get returns the entry of k, whose hash is h, or nil.
func (s *shard) get(h uint64, k state.InstanceKey) *entry {
	if e := s.entries[h]; e != nil && e.is(k) {
		return e
	}
	if len(s.collided) > 0 {
		return s.collided[k]
	}
	return nil
}

// put makes e the entry of k, whose hash is h; an entry it replaces is
// marked removed.
func (s *shard) put(h uint64, k state.InstanceKey, e *entry) {
	if old := s.collided[k]; old != nil {
		old.removed = true
		s.collided[k] = e
		return
	}
	if old := s.entries[h]; old != nil && !old.is(k) {
		if s.collided == nil {
			s.collided = make(map[state.InstanceKey]*entry)
		}
		s.collided[k] = e
		return
	} else if old != nil {
		old.removed = true
	}
	s.entries[h] = e
}

// remove drops the entry of k, whose hash is h, if it is e.
func (s *shard) remove(h uint64, k state.InstanceKey, e *entry) {
	if s.entries[h] == e {
		delete(s.entries, h)
	} else if s.collided[k] == e {
		delete(s.collided, k)
	} else {
		return
	}
	e.removed = true
}

// each calls f for every entry of the shard.
func (s *shard) each(f func(*entry)) {
	for _, e := range s.entries {
		f(e)
	}
	for _, e := range s.collided {
		f(e)
	}
}

func (s *shard) clear() {
	s.entries = make(map[uint64]*entry)
	s.collided = nil
	s.resetWheel()
}

// Options configure a Table.
type Options struct {
	// Journal persists token rotations; nil keeps them in memory only.
	Journal Journal
	// Logger receives expiry and journal messages; nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Batch is the most expiries in one batch; 0 means DefaultBatch.
	Batch int
}

// New returns a Table. It loads the journal's tokens, if any.
func New(opts Options) (*Table, error) {
	t := &Table{
		seed:    maphash.MakeSeed(),
		journal: opts.Journal,
		log:     opts.Logger,
		now:     opts.Now,
		batch:   opts.Batch,
		expired: make(chan []state.Expiry, 16),
	}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	if t.now == nil {
		t.now = time.Now
	}
	if t.batch <= 0 {
		t.batch = DefaultBatch
	}
	for i := range t.shards {
		var seed [32]byte
		_, _ = rand.Read(seed[:]) // crypto/rand.Read never fails (Go 1.24+)
		t.shards[i].tokens = mrand.NewChaCha8(seed)
		t.shards[i].clear()
	}
	t.keyHash = t.hashKey
	if t.journal != nil {
		restored, err := t.journal.Load()
		if err != nil {
			return nil, err
		}
		t.restored.Store(&restored)
	}
	return t, nil
}

func (t *Table) hashKey(k state.InstanceKey) uint64 {
	var h maphash.Hash
	h.SetSeed(t.seed)
	h.WriteString(k.Namespace)
	h.WriteByte(0)
	h.WriteString(k.Service)
	h.WriteByte(0)
	h.WriteString(k.ID)
	return h.Sum64()
}

// shardFor returns k's shard and hash.
func (t *Table) shardFor(k state.InstanceKey) (*shard, uint64) {
	h := t.keyHash(k)
	return &t.shards[h%shardCount], h
}

func tickOf(d time.Time) int64 { return tickOfNano(d.UnixNano()) }

// tickOfNano is the tick whose interval ((b-1)·tick, b·tick] holds ns,
// to the nanosecond: once now >= b·tick, every deadline filed under b has
// passed. (Counted in whole milliseconds, a deadline less than a
// millisecond after b·tick went under b too; a round at b·tick then took
// tick b out of the wheel with that deadline not yet passed, and it was
// never expired.)
func tickOfNano(ns int64) int64 {
	if ns > 0 {
		return (ns-1)/int64(tick) + 1
	}
	return ns / int64(tick) // rounds toward zero: up, for negatives
}

// schedule files e in the wheel under its deadline's tick, or under the
// next tick when that one may already be reaped (a registration applied
// after its deadline, a renewal undone to a passed deadline), so that the
// reaper still visits it.
func (s *shard) schedule(e *entry, nowNS int64) {
	s.file(max(tickOfNano(e.deadline), tickOfNano(nowNS)+1), e)
}

// unixTime is the inverse of time.Time.UnixNano, in UTC.
func unixTime(ns int64) time.Time { return time.Unix(0, ns).UTC() }

// NewToken returns a fresh heartbeat token: 128 random bits, URL-safe.
func NewToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return encodeToken(b)
}

// nextToken is NewToken from the shard's stream; s.mu must be held.
func (s *shard) nextToken() string {
	var b [16]byte
	_, _ = s.tokens.Read(b[:]) // ChaCha8.Read never fails
	return encodeToken(b)
}

func encodeToken(b [16]byte) string {
	var out [tokenBytes]byte
	base64.RawURLEncoding.Encode(out[:], b[:])
	return string(out[:])
}

// InstanceAdded starts tracking a registration, or takes the new record of
// the same registration (a patch; a new timeout applies from the next
// heartbeat on). A new registration's lease starts at its RegisteredAt (now
// when that is zero or in the future): its deadline is RegisteredAt + timeout.
func (t *Table) InstanceAdded(inst *state.Instance) {
	k := inst.Key()
	s, h := t.shardFor(k)
	now := t.now()
	timeout := time.Duration(inst.HeartbeatTimeout) * time.Second
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.get(h, k); e != nil && e.inst.RegIndex == inst.RegIndex {
		e.inst = inst // the new timeout applies from the next heartbeat on
		return
	}
	tok := inst.Token
	if restored := t.restored.Load(); restored != nil {
		if r, ok := (*restored)[inst.RegIndex]; ok {
			tok = r
		}
	}
	// A new registration's lease starts at its command's time, so the
	// instance.join event and the answer agree on the deadline. A
	// registration replayed from an old log gets a deadline in the past
	// here, which is harmless: only a leader reaps, and promotion resets
	// every deadline to now + timeout first.
	start := inst.RegisteredAt
	if start.IsZero() || start.After(now) {
		start = now
	}
	e := &entry{inst: inst, token: tok, lastBeat: start.UnixNano(), deadline: start.Add(timeout).UnixNano()}
	s.put(h, k, e)
	s.schedule(e, now.UnixNano())
}

// AddsInParallel makes the Table a state.ParallelObserver: InstanceAdded
// takes only the lock of the key's shard, so a restore may call it from
// several goroutines.
func (t *Table) AddsInParallel() {}

// InstanceRemoved stops tracking a registration.
func (t *Table) InstanceRemoved(inst *state.Instance) {
	k := inst.Key()
	s, h := t.shardFor(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.get(h, k); e != nil && e.inst.RegIndex == inst.RegIndex {
		s.remove(h, k, e)
	}
}

// Reset forgets every registration (before a restore re-adds them).
func (t *Table) Reset() {
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		s.clear()
		s.mu.Unlock()
	}
	t.changedAll()
}

// Heartbeat renews the registration of k if token is its current token and
// its deadline has not passed. It returns the next token and the new
// deadline; the presented token is spent. A registration past its deadline
// is dead even before its expiry is committed: ErrNotFound. A token that is
// not the current one changes nothing: ErrTokenMismatch.
func (t *Table) Heartbeat(k state.InstanceKey, token string) (string, time.Time, error) {
	if !t.leader.Load() {
		return "", time.Time{}, registry.ErrNotLeader
	}
	r := t.renew(k, token, t.now())
	if r.Err != nil {
		return "", time.Time{}, r.Err
	}
	// The rotation must be durable before it is acknowledged, or a restart
	// would leave the client holding a token the server never heard of. The
	// journal is written outside the shard lock: only the holder of the
	// current token can cause the next rotation of this registration, so
	// rotations of one registration reach the journal in order.
	if t.journal != nil {
		if err := t.journal.Append(r.regIndex, r.Token); err != nil {
			t.undo(k, r, token)
			return "", time.Time{}, err
		}
	}
	return r.Token, r.Deadline, nil
}

// Beat is one heartbeat of a batch.
type Beat struct {
	Key   state.InstanceKey
	Token string
}

// Renewal is the outcome of one heartbeat of a batch: the next token and
// deadline, or the error that heartbeat alone would have got.
type Renewal struct {
	Token    string
	Deadline time.Time
	Err      error
	regIndex uint64
	// the lease before the renewal (Unix nanoseconds), to put back if it
	// cannot be journaled
	prevBeat, prevDeadline int64
}

// HeartbeatBatch renews many registrations at once, each answered on its
// own as Heartbeat would, with one journal write for the whole batch. If
// that write fails, every renewal of the batch is undone and fails with it.
func (t *Table) HeartbeatBatch(beats []Beat) []Renewal {
	return t.AppendHeartbeatBatch(nil, beats)
}

// AppendHeartbeatBatch is HeartbeatBatch appending the renewals to dst, so
// that a caller can reuse their memory from batch to batch.
func (t *Table) AppendHeartbeatBatch(dst []Renewal, beats []Beat) []Renewal {
	dst = slices.Grow(dst, len(beats))
	out := dst[len(dst) : len(dst)+len(beats)]
	dst = dst[:len(dst)+len(beats)]
	clear(out)
	if !t.leader.Load() {
		for i := range out {
			out[i].Err = registry.ErrNotLeader
		}
		return dst
	}
	now := t.now()
	recs := make([]Record, 0, len(beats))
	for i, b := range beats {
		out[i] = t.renew(b.Key, b.Token, now)
		if out[i].Err == nil {
			recs = append(recs, Record{RegIndex: out[i].regIndex, Token: out[i].Token})
		}
	}
	if t.journal == nil || len(recs) == 0 {
		return dst
	}
	var err error
	if ba, ok := t.journal.(BatchJournal); ok {
		err = ba.AppendBatch(recs)
	} else {
		for _, r := range recs {
			if err = t.journal.Append(r.RegIndex, r.Token); err != nil {
				break
			}
		}
	}
	if err != nil {
		for i, b := range beats {
			if out[i].Err == nil {
				t.undo(b.Key, out[i], b.Token)
				out[i] = Renewal{Err: err}
			}
		}
	}
	return dst
}

// renew checks and rotates one token in memory.
func (t *Table) renew(k state.InstanceKey, token string, now time.Time) Renewal {
	s, h := t.shardFor(k)
	nowNS := now.UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.get(h, k)
	if e == nil || e.expiring || nowNS >= e.deadline {
		return Renewal{Err: registry.NotFound("instance %s", k)}
	}
	if subtle.ConstantTimeCompare([]byte(e.token), []byte(token)) != 1 {
		return Renewal{Err: registry.ErrTokenMismatch}
	}
	next := s.nextToken()
	r := Renewal{Token: next, regIndex: e.inst.RegIndex, prevBeat: e.lastBeat, prevDeadline: e.deadline}
	e.token = next
	e.lastBeat = nowNS
	e.deadline = now.Add(e.timeout()).UnixNano()
	s.schedule(e, nowNS)
	t.changed(k.Namespace, k.Service)
	r.Deadline = unixTime(e.deadline)
	return r
}

// undo puts back the lease as it was before a renewal that could not be
// journaled: the client keeps using the token it has, and a heartbeat that
// was answered with an error renews nothing. (The wheel keeps a stale
// reference to the later deadline; the reaper skips stale references.)
func (t *Table) undo(k state.InstanceKey, r Renewal, sent string) {
	s, h := t.shardFor(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.get(h, k); e != nil && e.inst.RegIndex == r.regIndex && e.token == r.Token {
		e.token, e.lastBeat, e.deadline = sent, r.prevBeat, r.prevDeadline
		s.schedule(e, t.now().UnixNano())
		t.changed(k.Namespace, k.Service)
	}
}

// Lease is what the table knows of one registration.
type Lease struct {
	LastBeat time.Time
	Deadline time.Time
	Token    string
}

// Passing reports whether the lease's deadline is after now.
func (l Lease) Passing(now time.Time) bool { return now.Before(l.Deadline) }

// Get returns the lease of registration regIndex of k.
func (t *Table) Get(k state.InstanceKey, regIndex uint64) (Lease, bool) {
	s, h := t.shardFor(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.get(h, k)
	if e == nil || e.inst.RegIndex != regIndex {
		return Lease{}, false
	}
	return Lease{LastBeat: unixTime(e.lastBeat), Deadline: unixTime(e.deadline), Token: e.token}, true
}

// ServiceVersion is a number that changes whenever a lease of the service
// ns/name changes without a write to the state: a renewal, an undone
// renewal, the reset of every deadline at promotion, a Reset. (Leases that
// start or end with a registration come with a state write.) A reader that
// takes ServiceVersion before it reads the service's leases, and finds the
// same number later, knows that those leases have not changed since.
// Services can share a number: a change of one also changes the others'.
func (t *Table) ServiceVersion(ns, name string) uint64 {
	return t.versions[t.stripe(ns, name)].Load()
}

// changed advances the version of ns/name. It is called after the lease
// change, under the shard lock, so a reader that sees the change also sees
// the new version.
func (t *Table) changed(ns, name string) {
	t.versions[t.stripe(ns, name)].Add(1)
}

// changedAll advances every service's version.
func (t *Table) changedAll() {
	for i := range t.versions {
		t.versions[i].Add(1)
	}
}

func (t *Table) stripe(ns, name string) int {
	var h maphash.Hash
	h.SetSeed(t.seed)
	h.WriteString(ns)
	h.WriteByte(0)
	h.WriteString(name)
	return int(h.Sum64() % versionStripes)
}

// Now returns the table's clock reading.
func (t *Table) Now() time.Time { return t.now() }

// LiveTokens is Tokens for compacting the journal: nil while the table
// still takes tokens from the journal it loaded at start-up (until it first
// leads), when the registrations replayed so far are not all there is and a
// compaction would drop tokens that only the journal holds.
func (t *Table) LiveTokens() map[uint64]string {
	if t.restored.Load() != nil {
		return nil
	}
	return t.Tokens()
}

// Len returns how many registrations the table tracks.
func (t *Table) Len() int {
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		n += len(s.entries) + len(s.collided)
		s.mu.Unlock()
	}
	return n
}

// Tokens returns the current token of every tracked registration.
func (t *Table) Tokens() map[uint64]string {
	out := make(map[uint64]string)
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		s.each(func(e *entry) { out[e.inst.RegIndex] = e.token })
		s.mu.Unlock()
	}
	return out
}
