package fsm_test

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"pgregory.net/rapid"

	"github.com/muster-registry/muster/api"
	"github.com/muster-registry/muster/internal/fsm"
	"github.com/muster-registry/muster/internal/registry"
	"github.com/muster-registry/muster/internal/state"
)

// The pools are small so that generated commands collide: the same tag posted
// twice, the same instance id registered over a live one.
var (
	tagPool = []string{"1.2.9", "1.10.0", "2.0.0-rc.1", "v2.0.0", "2.0.0+b1", "latest", "main", "1.2"}
	// rank is the semver precedence of each tag of the pool (0: not semver),
	// written out by hand so that the model does not reuse the code under test.
	rank = map[string]int{"1.2.9": 1, "1.10.0": 2, "2.0.0-rc.1": 3, "v2.0.0": 4, "2.0.0+b1": 4}

	svcPool = []string{"a", "b"}
	idPool  = []string{"web-1", "web-2", "web-3"}
)

const (
	testNS      = "ns"
	smallRetain = 5
)

// ---- the model ----

type modelRev struct {
	created    time.Time
	md         map[string]string
	notDefault bool // registered or re-posted with is_default:false
}

type modelInst struct {
	regIndex     uint64
	timeout      int
	tags         []string
	md           map[string]string
	token        string
	registeredAt time.Time
}

// mdPool are the metadata the test registers and patches with: none,
// one pair, and keys that sort and escape differently.
var mdPool = []map[string]string{nil, {}, {"zone": "a"}, {"zone": "b", "rack": "7", "<&>": "é\u2028", "Z": ""}}

type modelSvc struct {
	revs  map[string]modelRev
	def   string
	insts map[string]modelInst
}

// wantEvent is an event the model expects: its type, service, time and the
// JSON of its payload.
type wantEvent struct {
	typ     string
	svc     string
	at      time.Time
	payload []byte
}

type model struct {
	svcs   map[string]*modelSvc
	events []wantEvent
}

func (m *model) svc(name string) *modelSvc {
	s := m.svcs[name]
	if s == nil {
		s = &modelSvc{revs: map[string]modelRev{}, insts: map[string]modelInst{}}
		m.svcs[name] = s
	}
	return s
}

// exists says whether the store should know the service: it has a revision or an instance.
func (m *model) exists(name string) bool {
	s := m.svcs[name]
	return s != nil && (len(s.revs) > 0 || len(s.insts) > 0)
}

func (m *model) emit(typ, svc string, at time.Time, payload any) {
	// Payloads are written with HTML characters unescaped.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(payload); err != nil {
		panic(err)
	}
	raw := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	m.events = append(m.events, wantEvent{typ: typ, svc: svc, at: at, payload: raw})
}

// greatest is the default rule's choice among tags: the highest rank, ties to
// the smallest tag; "" when none is semver.
func greatest(tags []string) string {
	best := ""
	for _, t := range tags {
		r := rank[t]
		if r == 0 {
			continue
		}
		if best == "" || r > rank[best] || (r == rank[best] && t < best) {
			best = t
		}
	}
	return best
}

// listOrder is the order of Revisions: semver by descending rank, then by tag;
// non-semver tags after, by tag.
func listOrder(a, b string) int {
	ra, rb := rank[a], rank[b]
	switch {
	case ra > 0 && rb > 0 && ra != rb:
		return rb - ra
	case ra > 0 && rb == 0:
		return -1
	case ra == 0 && rb > 0:
		return 1
	}
	return cmp.Compare(a, b)
}

func (s *modelSvc) tags(except string) []string {
	var out []string
	for t := range s.revs {
		if t != except {
			out = append(out, t)
		}
	}
	return out
}

// eligible are the tags the default rule may pick: not except, and not
// explicitly non-default.
func (s *modelSvc) eligible(except string) []string {
	var out []string
	for t, r := range s.revs {
		if t != except && !r.notDefault {
			out = append(out, t)
		}
	}
	return out
}

func revisionJSON(svc, tag string, isDefault bool, r modelRev) api.Revision {
	md := r.md
	if md == nil {
		md = map[string]string{}
	}
	return api.Revision{Namespace: testNS, Name: svc, RevisionTag: tag, IsDefault: isDefault, CreatedAt: r.created, Metadata: md}
}

func instanceJSON(svc, id string, mi modelInst, at time.Time) api.Instance {
	tags := mi.tags
	if tags == nil {
		tags = []string{}
	}
	md := mi.md
	if md == nil {
		md = map[string]string{}
	}
	return api.Instance{
		Namespace: testNS, Service: svc, ID: id, Endpoints: []string{}, Tags: tags, Metadata: md,
		HeartbeatTimeout: mi.timeout, Status: api.StatusPassing, RegisteredAt: mi.registeredAt,
		LastHeartbeatAt: at, ExpiresAt: at.Add(time.Duration(mi.timeout) * time.Second),
	}
}

// ---- the system under test ----

// liveObserver mirrors the live registrations as the Store reports them, and
// records every report that contradicts what it was told before.
type liveObserver struct {
	live       map[state.InstanceKey]uint64
	violations []string
}

func newLiveObserver() *liveObserver {
	return &liveObserver{live: map[state.InstanceKey]uint64{}}
}

func (o *liveObserver) InstanceAdded(inst *state.Instance) {
	if idx, ok := o.live[inst.Key()]; ok && idx != inst.RegIndex {
		o.violations = append(o.violations, fmt.Sprintf("added %s@%d while %d is live", inst.Key(), inst.RegIndex, idx))
	}
	o.live[inst.Key()] = inst.RegIndex
}

func (o *liveObserver) InstanceRemoved(inst *state.Instance) {
	if idx, ok := o.live[inst.Key()]; !ok || idx != inst.RegIndex {
		o.violations = append(o.violations, fmt.Sprintf("removed %s@%d, not live", inst.Key(), inst.RegIndex))
	}
	delete(o.live, inst.Key())
}

func (o *liveObserver) Reset() { o.live = map[state.InstanceKey]uint64{} }

// node is one store with the FSM that writes it.
type node struct {
	store  *state.Store
	fsm    *fsm.FSM
	obs    *liveObserver
	retain int
}

func newNode(retain int) *node {
	obs := newLiveObserver()
	st := state.New(retain, obs)
	return &node{store: st, fsm: fsm.New(st), obs: obs, retain: retain}
}

type harness struct {
	big, small *node // retaining every event, and only the newest smallRetain
	index      uint64
	now        time.Time
	m          model
}

func (h *harness) apply(t *rapid.T, cmd fsm.Command) fsm.Result {
	t.Helper()
	h.index++
	data, err := fsm.Encode(cmd)
	if err != nil {
		t.Fatalf("encode %T: %v", cmd, err)
	}
	res := h.big.fsm.Apply(&raft.Log{Index: h.index, Data: data}).(fsm.Result)
	res2 := h.small.fsm.Apply(&raft.Log{Index: h.index, Data: data}).(fsm.Result)
	if (res.Err == nil) != (res2.Err == nil) {
		t.Fatalf("stores of different retention disagree: %v vs %v", res.Err, res2.Err)
	}
	return res
}

// tick returns the time for the next command: it moves on by a random number
// of milliseconds, and it is UTC with millisecond precision, as the leader stamps it.
func (h *harness) tick(t *rapid.T) time.Time {
	h.now = h.now.Add(time.Duration(rapid.IntRange(1, 5000).Draw(t, "ms")) * time.Millisecond)
	return h.now
}

var boolPtrGen = rapid.SampledFrom([]string{"absent", "true", "false"})

func drawBoolPtr(t *rapid.T, label string) *bool {
	switch boolPtrGen.Draw(t, label) {
	case "true":
		v := true
		return &v
	case "false":
		v := false
		return &v
	}
	return nil
}

func (h *harness) registerRevision(t *rapid.T, explicit *bool) {
	svc := rapid.SampledFrom(svcPool).Draw(t, "svc")
	tag := rapid.SampledFrom(tagPool).Draw(t, "tag")
	var md map[string]string
	if v := rapid.IntRange(0, 2).Draw(t, "md"); v > 0 {
		md = map[string]string{"k": fmt.Sprint("v", v)}
	}
	now := h.tick(t)
	res := h.apply(t, &fsm.RegisterRevision{Time: now, Namespace: testNS, Name: svc, Tag: tag, IsDefault: explicit, Metadata: md})

	s := h.m.svc(svc)
	old, existed := s.revs[tag]
	if existed && md != nil && !maps.Equal(md, old.md) && (len(md) > 0 || len(old.md) > 0) {
		// A revision's metadata is fixed at registration.
		wantErr(t, "RegisterRevision with other metadata", res.Err, registry.ErrConflict)
		return
	}
	next := s.def
	switch {
	case !existed:
		s.revs[tag] = modelRev{created: now, md: md, notDefault: explicit != nil && !*explicit}
	case explicit != nil:
		old.notDefault = !*explicit
		s.revs[tag] = old
	}
	switch {
	case explicit != nil && *explicit:
		next = tag
	case explicit != nil && s.def == tag:
		next = greatest(s.eligible(""))
	case explicit == nil && !existed:
		if r := rank[tag]; r > 0 && !slices.ContainsFunc(s.eligible(tag), func(o string) bool { return rank[o] >= r }) {
			next = tag
		}
	}
	if !existed {
		h.m.emit(api.EventRevisionRegister, svc, now, revisionJSON(svc, tag, next == tag, s.revs[tag]))
	}
	if next != s.def {
		h.m.emit(api.EventRevisionDefault, svc, now, api.RevisionDefaultPayload{RevisionTag: next, Previous: s.def})
		s.def = next
	}

	if res.Err != nil {
		t.Fatalf("RegisterRevision: %v", res.Err)
	}
	rr := res.Value.(fsm.RevisionResult)
	if rr.Created == existed || rr.Revision.RevisionTag != tag || rr.Revision.IsDefault != (s.def == tag) {
		t.Fatalf("RegisterRevision result = %+v; want created %v, default %v", rr, !existed, s.def == tag)
	}
}

func (h *harness) deleteRevision(t *rapid.T) {
	svc := rapid.SampledFrom(svcPool).Draw(t, "svc")
	tag := rapid.SampledFrom(tagPool).Draw(t, "tag")
	now := h.tick(t)
	res := h.apply(t, &fsm.DeleteRevision{Time: now, Namespace: testNS, Name: svc, Tag: tag})

	s := h.m.svcs[svc]
	if s == nil || !h.m.exists(svc) {
		wantErr(t, "DeleteRevision of a missing service", res.Err, registry.ErrNotFound)
		return
	}
	rev, ok := s.revs[tag]
	if !ok {
		wantErr(t, "DeleteRevision of a missing tag", res.Err, registry.ErrNotFound)
		return
	}
	if res.Err != nil {
		t.Fatalf("DeleteRevision: %v", res.Err)
	}
	h.m.emit(api.EventRevisionRemove, svc, now, revisionJSON(svc, tag, s.def == tag, rev))
	delete(s.revs, tag)
	if s.def == tag {
		next := greatest(s.eligible(""))
		h.m.emit(api.EventRevisionDefault, svc, now, api.RevisionDefaultPayload{RevisionTag: next, Previous: s.def})
		s.def = next
	}
}

func (h *harness) registerInstance(t *rapid.T) {
	svc := rapid.SampledFrom(svcPool).Draw(t, "svc")
	id := rapid.SampledFrom(idPool).Draw(t, "id")
	replace := rapid.Bool().Draw(t, "replace")
	timeout := rapid.SampledFrom([]int{3, 10, 30, 120}).Draw(t, "timeout")
	tags := rapid.SampledFrom([][]string{nil, {"eu"}, {"eu", "canary"}}).Draw(t, "tags")
	md := rapid.SampledFrom(mdPool).Draw(t, "metadata")
	now := h.tick(t)
	token := fmt.Sprintf("tok-%018d", h.index+1)
	res := h.apply(t, &fsm.RegisterInstance{Time: now, Replace: replace, Instance: state.Instance{
		Namespace: testNS, Service: svc, ID: id, HeartbeatTimeout: int32(timeout), Tags: tags, Token: token, Metadata: state.MetadataOf(md),
		RegIndex: 999_999, // the FSM stamps the log index over whatever the command says
	}})

	s := h.m.svc(svc)
	_, live := s.insts[id]
	if live && !replace {
		wantErr(t, "POST of a live id", res.Err, registry.ErrInstanceExists)
		return
	}
	if res.Err != nil {
		t.Fatalf("RegisterInstance: %v", res.Err)
	}
	mi := modelInst{regIndex: h.index, timeout: timeout, tags: tags, md: md, token: token, registeredAt: now}
	s.insts[id] = mi
	typ := api.EventInstanceJoin
	if live {
		typ = api.EventInstanceUpdate
	}
	h.m.emit(typ, svc, now, instanceJSON(svc, id, mi, now))

	ir := res.Value.(fsm.InstanceResult)
	if ir.Replaced != live || ir.Instance.RegIndex != h.index || !ir.Instance.RegisteredAt.Equal(now) {
		t.Fatalf("RegisterInstance result = {%+v replaced %v}; want replaced %v, reg index %d", ir.Instance, ir.Replaced, live, h.index)
	}
}

func (h *harness) patchInstance(t *rapid.T) {
	svc := rapid.SampledFrom(svcPool).Draw(t, "svc")
	id := rapid.SampledFrom(idPool).Draw(t, "id")
	var p api.PatchInstanceRequest
	if rapid.Bool().Draw(t, "patch tags") {
		tags := rapid.SampledFrom([][]string{{}, {"us"}, {"eu", "canary"}}).Draw(t, "tags")
		p.Tags = &tags
	}
	if rapid.Bool().Draw(t, "patch metadata") {
		md := rapid.SampledFrom(mdPool[1:]).Draw(t, "metadata") // a patch's metadata is never null
		p.Metadata = &md
	}
	if rapid.Bool().Draw(t, "patch timeout") {
		to := rapid.SampledFrom([]int{3, 10, 30, 120}).Draw(t, "timeout")
		p.HeartbeatTimeout = &to
	}
	now := h.tick(t)
	res := h.apply(t, &fsm.PatchInstance{Time: now, Key: state.InstanceKey{Namespace: testNS, Service: svc, ID: id}, Patch: p})

	s := h.m.svcs[svc]
	mi, live := modelInst{}, false
	if s != nil {
		mi, live = s.insts[id]
	}
	if !live {
		wantErr(t, "PATCH of a missing instance", res.Err, registry.ErrNotFound)
		return
	}
	if res.Err != nil {
		t.Fatalf("PatchInstance: %v", res.Err)
	}
	if p.Tags != nil {
		mi.tags = *p.Tags
	}
	if p.HeartbeatTimeout != nil {
		mi.timeout = *p.HeartbeatTimeout
	}
	if p.Metadata != nil {
		mi.md = *p.Metadata
	}
	s.insts[id] = mi
	if p.Tags != nil || p.HeartbeatTimeout != nil || p.Metadata != nil { // an empty patch changes nothing and says nothing
		h.m.emit(api.EventInstanceUpdate, svc, now, instanceJSON(svc, id, mi, now))
	}
	if got := res.Value.(fsm.InstanceResult).Instance; got.RegIndex != mi.regIndex || got.Token != mi.token {
		t.Fatalf("PatchInstance changed the registration: %+v, want reg index %d", got, mi.regIndex)
	}
}

func (h *harness) deregisterInstance(t *rapid.T) {
	svc := rapid.SampledFrom(svcPool).Draw(t, "svc")
	id := rapid.SampledFrom(idPool).Draw(t, "id")
	now := h.tick(t)
	res := h.apply(t, &fsm.DeregisterInstance{Time: now, Key: state.InstanceKey{Namespace: testNS, Service: svc, ID: id}})

	s := h.m.svcs[svc]
	if s == nil {
		wantErr(t, "DELETE of a missing instance", res.Err, registry.ErrNotFound)
		return
	}
	if _, live := s.insts[id]; !live {
		wantErr(t, "DELETE of a missing instance", res.Err, registry.ErrNotFound)
		return
	}
	if res.Err != nil {
		t.Fatalf("DeregisterInstance: %v", res.Err)
	}
	delete(s.insts, id)
	h.m.emit(api.EventInstanceRemove, svc, now, api.InstanceRemovedPayload{ID: id})
}

func (h *harness) expireInstances(t *rapid.T) {
	n := rapid.IntRange(1, 3).Draw(t, "items")
	now := h.tick(t)
	var items []state.Expiry
	for range n {
		svc := rapid.SampledFrom(svcPool).Draw(t, "svc")
		id := rapid.SampledFrom(idPool).Draw(t, "id")
		var regIndex uint64
		if s := h.m.svcs[svc]; s != nil {
			regIndex = s.insts[id].regIndex // 0 when not live
		}
		if rapid.Bool().Draw(t, "stale") {
			regIndex += uint64(rapid.IntRange(1, 3).Draw(t, "stale by")) // a registration that is no longer (or not yet) live
		}
		deadline := now.Add(-time.Duration(rapid.IntRange(0, 60_000).Draw(t, "late ms")) * time.Millisecond)
		items = append(items, state.Expiry{Key: state.InstanceKey{Namespace: testNS, Service: svc, ID: id}, RegIndex: regIndex, Deadline: deadline})
	}
	res := h.apply(t, &fsm.ExpireInstances{Time: now, Items: items})

	removed := 0
	for _, e := range items {
		s := h.m.svcs[e.Key.Service]
		if s == nil {
			continue
		}
		if mi, live := s.insts[e.Key.ID]; live && mi.regIndex == e.RegIndex {
			delete(s.insts, e.Key.ID)
			h.m.emit(api.EventInstanceTimeout, e.Key.Service, e.Deadline, api.InstanceRemovedPayload{ID: e.Key.ID, Deadline: e.Deadline})
			removed++
		}
	}
	if res.Err != nil || res.Value != removed {
		t.Fatalf("ExpireInstances = %v, %v; want %d removed", res.Value, res.Err, removed)
	}
}

// snapshotRestore replaces each node by a fresh one restored from its
// snapshot, through the FSM as raft would do it, and checks that the restored
// store writes the same bytes. The run then goes on with the restored nodes.
func (h *harness) snapshotRestore(t *rapid.T) {
	for _, np := range []**node{&h.big, &h.small} {
		old := *np
		before := snapshotBytes(t, old.store)

		fsnap, err := old.fsm.Snapshot()
		if err != nil {
			t.Fatalf("Snapshot: %v", err)
		}
		sink := &memSink{}
		if err := fsnap.Persist(sink); err != nil {
			t.Fatalf("Persist: %v", err)
		}
		fsnap.Release()
		if !sink.closed || !bytes.Equal(sink.Bytes(), before) {
			t.Fatalf("Persist wrote %d bytes (closed %v), Snapshot().WriteTo %d", sink.Len(), sink.closed, len(before))
		}

		fresh := newNode(old.retain)
		if err := fresh.fsm.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
			t.Fatalf("Restore: %v", err)
		}
		if after := snapshotBytes(t, fresh.store); !bytes.Equal(before, after) {
			t.Fatalf("snapshot of the restored store differs:\nbefore %s\nafter  %s", before, after)
		}
		sameReads(t, old.store, fresh.store)
		*np = fresh
	}
}

type memSink struct {
	bytes.Buffer
	closed bool
}

func (s *memSink) ID() string     { return "mem" }
func (s *memSink) Cancel() error  { return nil }
func (s *memSink) Close() error   { s.closed = true; return nil }
func (s *memSink) String() string { return "memSink" }

func snapshotBytes(t interface{ Fatalf(string, ...any) }, st *state.Store) []byte {
	var buf bytes.Buffer
	if _, err := st.Snapshot().WriteTo(&buf); err != nil {
		t.Fatalf("WriteTo: %v", err)
	}
	return buf.Bytes()
}

// sameReads checks that two stores answer the reads the same way.
func sameReads(t *rapid.T, a, b *state.Store) {
	t.Helper()
	if a.Index() != b.Index() || a.OldestEvent() != b.OldestEvent() {
		t.Fatalf("index/oldest: %d/%d vs %d/%d", a.Index(), a.OldestEvent(), b.Index(), b.OldestEvent())
	}
	for _, svc := range svcPool {
		k := state.Key{Namespace: testNS, Name: svc}
		ra, ia, ea := a.Revisions(k)
		rb, ib, eb := b.Revisions(k)
		mustEqualJSON(t, "Revisions "+svc, []any{ra, ia, ea != nil}, []any{rb, ib, eb != nil})
		insa, _, oka := a.Instances(k)
		insb, _, okb := b.Instances(k)
		mustEqualJSON(t, "Instances "+svc, []any{insa, oka}, []any{insb, okb})
	}
	eva, la, erra := a.Events(0, state.EventFilter{}, 1<<30)
	evb, lb, errb := b.Events(0, state.EventFilter{}, 1<<30)
	mustEqualJSON(t, "Events", []any{eva, la, erra != nil}, []any{evb, lb, errb != nil})
	sa, _ := a.Services("")
	sb, _ := b.Services("")
	mustEqualJSON(t, "Services", sa, sb)
}

func mustEqualJSON(t *rapid.T, what string, a, b any) {
	t.Helper()
	ja, err := json.Marshal(a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	jb, err := json.Marshal(b)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if !bytes.Equal(ja, jb) {
		t.Fatalf("%s differ:\n%s\n%s", what, ja, jb)
	}
}

func wantErr(t *rapid.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want %v", what, err, target)
	}
}

// ---- the checks after every step ----

func (h *harness) check(t *rapid.T) {
	t.Helper()
	for _, n := range []*node{h.big, h.small} {
		h.checkState(t, n)
	}
	h.checkEvents(t, h.big.store, 1)
	h.checkRetention(t, h.small.store)
}

func (h *harness) checkState(t *rapid.T, n *node) {
	t.Helper()
	wantLive := map[state.InstanceKey]uint64{}
	for _, svc := range svcPool {
		k := state.Key{Namespace: testNS, Name: svc}
		s := h.m.svcs[svc]
		exists := h.m.exists(svc)

		revs, _, err := n.store.Revisions(k)
		if !exists {
			wantErr(t, "Revisions of "+svc, err, registry.ErrNotFound)
		} else {
			if err != nil {
				t.Fatalf("Revisions of %s: %v", svc, err)
			}
			wantTags := s.tags("")
			slices.SortFunc(wantTags, listOrder)
			var gotTags []string
			defaults := 0
			for _, r := range revs {
				gotTags = append(gotTags, r.RevisionTag)
				if r.IsDefault {
					defaults++
				}
				want := revisionJSON(svc, r.RevisionTag, s.def == r.RevisionTag, s.revs[r.RevisionTag])
				mustEqualJSON(t, "revision "+svc+":"+r.RevisionTag, r, want)
			}
			if !slices.Equal(gotTags, wantTags) {
				t.Fatalf("revisions of %s = %q, want %q", svc, gotTags, wantTags)
			}
			if defaults > 1 {
				t.Fatalf("service %s has %d defaults", svc, defaults)
			}
		}

		def, _, err := n.store.Revision(k, "")
		switch {
		case !exists || s.def == "":
			wantErr(t, "default revision of "+svc, err, registry.ErrNotFound)
		case err != nil || def.RevisionTag != s.def || !def.IsDefault:
			t.Fatalf("default revision of %s = %+v, %v; want %q", svc, def, err, s.def)
		}

		insts, _, ok := n.store.Instances(k)
		if ok != exists {
			t.Fatalf("Instances(%s) found %v, want %v", svc, ok, exists)
		}
		var gotIDs, wantIDs []string
		for _, inst := range insts {
			gotIDs = append(gotIDs, inst.ID)
			mi := s.insts[inst.ID]
			if inst.RegIndex != mi.regIndex || int(inst.HeartbeatTimeout) != mi.timeout || inst.Token != mi.token ||
				!slices.Equal(inst.Tags, mi.tags) || !maps.Equal(inst.Metadata.Map(), mi.md) || !inst.RegisteredAt.Equal(mi.registeredAt) {
				t.Fatalf("instance %s = %+v, want %+v", inst.Key(), inst, mi)
			}
		}
		if s != nil {
			wantIDs = slices.Sorted(maps.Keys(s.insts))
			for id, mi := range s.insts {
				wantLive[state.InstanceKey{Namespace: testNS, Service: svc, ID: id}] = mi.regIndex
			}
		}
		if !slices.Equal(gotIDs, wantIDs) {
			t.Fatalf("instances of %s = %q, want %q", svc, gotIDs, wantIDs)
		}
		for _, id := range idPool {
			ik := state.InstanceKey{Namespace: testNS, Service: svc, ID: id}
			inst, _, err := n.store.Instance(ik)
			if want, live := wantLive[ik]; live {
				if err != nil || inst.RegIndex != want {
					t.Fatalf("Instance(%s) = %v, %v; want reg index %d", ik, inst, err, want)
				}
			} else {
				wantErr(t, "Instance("+ik.String()+")", err, registry.ErrNotFound)
			}
		}
	}
	if len(n.obs.violations) > 0 {
		t.Fatalf("observer was told inconsistent things: %q", n.obs.violations)
	}
	if !maps.Equal(n.obs.live, wantLive) {
		t.Fatalf("observer sees %v live, want %v", n.obs.live, wantLive)
	}
}

// checkEvents compares the store's events from id `from` on with the model's.
func (h *harness) checkEvents(t *rapid.T, st *state.Store, from uint64) {
	t.Helper()
	want := h.m.events[from-1:]
	got, last, err := st.Events(from-1, state.EventFilter{}, 1<<30)
	if err != nil {
		t.Fatalf("Events(%d): %v", from-1, err)
	}
	if last != uint64(len(h.m.events)) || st.Index() != last {
		t.Fatalf("newest event = %d (Index %d), want %d", last, st.Index(), len(h.m.events))
	}
	if len(got) != len(want) {
		t.Fatalf("%d events from %d, want %d", len(got), from, len(want))
	}
	for i, e := range got {
		w := want[i]
		if e.ID != from+uint64(i) || e.Type != w.typ || e.Namespace != testNS || e.Service != w.svc || !e.Time.Equal(w.at) || !bytes.Equal(e.Payload, w.payload) {
			t.Fatalf("event %d = {%d %s %s/%s %s %s}, want {%d %s %s/%s %s %s}",
				i, e.ID, e.Type, e.Namespace, e.Service, e.Time, e.Payload, from+uint64(i), w.typ, testNS, w.svc, w.at, w.payload)
		}
	}
}

// checkRetention checks the window of the store that keeps only smallRetain events.
func (h *harness) checkRetention(t *rapid.T, st *state.Store) {
	t.Helper()
	total := uint64(len(h.m.events))
	oldest := uint64(1)
	if total > smallRetain {
		oldest = total - smallRetain + 1
	}
	if got := st.OldestEvent(); got != oldest {
		t.Fatalf("OldestEvent = %d, want %d of %d", got, oldest, total)
	}
	// after = 0 starts from the oldest held event, never fails.
	if evs, _, err := st.Events(0, state.EventFilter{}, 1); err != nil || (total > 0 && (len(evs) != 1 || evs[0].ID != oldest)) {
		t.Fatalf("Events(0, limit 1) = %v, %v; want event %d", evs, err, oldest)
	}
	h.checkEvents(t, st, oldest)
	if oldest >= 3 {
		// The newest after that is too old: the events right after it were dropped.
		if _, last, err := st.Events(oldest-2, state.EventFilter{}, 10); !errors.Is(err, registry.ErrCompacted) || last != total {
			t.Fatalf("Events(%d) with oldest %d = last %d, %v; want ErrCompacted", oldest-2, oldest, last, err)
		}
		if _, _, err := st.Events(1, state.EventFilter{}, 10); !errors.Is(err, registry.ErrCompacted) {
			t.Fatalf("Events(1) with oldest %d: %v, want ErrCompacted", oldest, err)
		}
	}
	if oldest >= 2 {
		evs, _, err := st.Events(oldest-1, state.EventFilter{}, 1)
		if err != nil || len(evs) != 1 || evs[0].ID != oldest {
			t.Fatalf("Events(%d, limit 1) = %v, %v; want event %d", oldest-1, evs, err, oldest)
		}
	}
}

func TestFSMAgainstModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		h := &harness{
			big:   newNode(0),
			small: newNode(smallRetain),
			now:   time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC),
			m:     model{svcs: map[string]*modelSvc{}},
		}
		t.Repeat(map[string]func(*rapid.T){
			"RegisterRevision": func(t *rapid.T) { h.registerRevision(t, drawBoolPtr(t, "is_default")) },
			// Twice as likely as the rest, explicit or not, since the default rule is what most can go wrong.
			"RegisterRevisionAbsent": func(t *rapid.T) { h.registerRevision(t, nil) },
			"DeleteRevision":         h.deleteRevision,
			"RegisterInstance":       h.registerInstance,
			"PatchInstance":          h.patchInstance,
			"DeregisterInstance":     h.deregisterInstance,
			"ExpireInstances":        h.expireInstances,
			"SnapshotRestore":        h.snapshotRestore,
			"":                       h.check,
		})
	})
}
