package state

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
	"sync"

	"github.com/muster-registry/muster/api"
	"github.com/muster-registry/muster/internal/registry"
)

// jsonSnapshotVersion is the version of the JSON snapshots written before
// the binary format; Restore still reads them.
const jsonSnapshotVersion = 1

// Snapshot is a point-in-time copy of the Store. Taking it holds the read lock
// only while references are collected (records are immutable; nothing is
// sorted under the lock); writing it takes no lock, so it may run while the
// Store is being written.
type Snapshot struct {
	header   snapHeader
	services []snapService
	events   []api.Event
}

type snapHeader struct {
	Version   int    `json:"version"`
	LastEvent uint64 `json:"last_event"`
	Services  int    `json:"services"`
	Events    int    `json:"events"`
}

type snapService struct {
	Namespace  string          `json:"namespace"`
	Name       string          `json:"name"`
	DefaultTag string          `json:"default_tag,omitempty"`
	Policy     *api.Policy     `json:"policy,omitempty"`
	Definition *api.Definition `json:"definition,omitempty"`
	Revisions  []*Revision     `json:"revisions"`
	Instances  []*Instance     `json:"instances"`
	// unsorted: Instances is a fresh slice in map order, which WriteTo
	// sorts (a cached sorted slice is shared and is not touched).
	unsorted bool
}

// Snapshot captures the Store.
func (s *Store) Snapshot() *Snapshot {
	s.mu.RLock()
	defer s.mu.RUnlock()
	snap := &Snapshot{events: s.events.all()}
	for k, svc := range s.services {
		ss := snapService{Namespace: k.Namespace, Name: k.Name, DefaultTag: svc.defaultTag, Policy: svc.policy, Definition: svc.definition}
		for _, r := range svc.revisions {
			ss.Revisions = append(ss.Revisions, r)
		}
		ss.Instances = instancesAnyOrder(svc)
		ss.unsorted = svc.sorted.Load() == nil
		snap.services = append(snap.services, ss)
	}
	snap.header = snapHeader{LastEvent: s.events.last, Services: len(snap.services), Events: len(snap.events)}
	return snap
}

// sort puts services, revisions and instances in the order a snapshot is
// written in: by key, tag and id.
func (snap *Snapshot) sort() {
	slices.SortFunc(snap.services, func(a, b snapService) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	for i := range snap.services {
		ss := &snap.services[i]
		slices.SortFunc(ss.Revisions, func(a, b *Revision) int { return cmp.Compare(a.Tag, b.Tag) })
		if ss.unsorted {
			slices.SortFunc(ss.Instances, func(a, b *Instance) int { return cmp.Compare(a.ID, b.ID) })
			ss.unsorted = false
		}
	}
}

// WriteTo encodes the snapshot in the binary format (see snapbin.go), in a
// fixed order so that equal states encode to equal bytes.
func (snap *Snapshot) WriteTo(w io.Writer) (int64, error) {
	snap.sort()
	cw := &countingWriter{w: w}
	sw := &snapWriter{w: bufio.NewWriterSize(cw, 1<<16)}
	if _, err := sw.w.WriteString(snapMagic); err != nil {
		return cw.n, fmt.Errorf("state: writing snapshot: %w", err)
	}
	sw.uvarint(snapshotVersion)
	sw.uvarint(snap.header.LastEvent)
	sw.uvarint(uint64(len(snap.services)))
	sw.uvarint(uint64(len(snap.events)))
	// Events first: Restore encodes them for the feed on another goroutine
	// while it decodes the services.
	for i := range snap.events {
		e := &snap.events[i]
		sw.uvarint(e.ID)
		sw.str(e.Type)
		sw.str(e.Namespace)
		sw.str(e.Service)
		sw.time(e.Time)
		sw.bytes(e.Payload)
	}
	for i := range snap.services {
		if err := sw.service(&snap.services[i]); err != nil {
			return cw.n, err
		}
	}
	if sw.err == nil {
		sw.err = sw.w.Flush()
	}
	if sw.err != nil {
		return cw.n, fmt.Errorf("state: writing snapshot: %w", sw.err)
	}
	return cw.n, nil
}

// service writes one service of the binary snapshot.
func (w *snapWriter) service(ss *snapService) error {
	w.str(ss.Namespace)
	w.str(ss.Name)
	w.str(ss.DefaultTag)
	for _, v := range []any{ss.Policy, ss.Definition} {
		// Rare and small: kept as JSON, read back by encoding/json.
		var b []byte
		if !isNil(v) {
			var err error
			if b, err = json.Marshal(v); err != nil {
				return fmt.Errorf("state: writing snapshot service %s/%s: %w", ss.Namespace, ss.Name, err)
			}
		}
		w.bytes(b)
	}
	w.uvarint(uint64(len(ss.Revisions)))
	for _, r := range ss.Revisions {
		w.str(r.Tag)
		w.time(r.CreatedAt)
		w.pairs(MetadataOf(r.Metadata))
		w.boolean(r.NotDefault)
	}
	w.uvarint(uint64(len(ss.Instances)))
	for _, inst := range ss.Instances {
		w.writeInstance(inst)
	}
	return nil
}

func isNil(v any) bool {
	switch p := v.(type) {
	case *api.Policy:
		return p == nil
	case *api.Definition:
		return p == nil
	}
	return v == nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Restore replaces the Store's contents with a snapshot written by WriteTo,
// or by the JSON writer of version 1. On error the Store is left unchanged.
// Watchers are woken, and the observer is reset and told of every restored
// instance.
func (s *Store) Restore(r io.Reader) error {
	br := bufio.NewReaderSize(r, 1<<18)
	s.mu.RLock()
	limit := s.events.limit
	s.mu.RUnlock()
	in := newInterner()
	var (
		services map[Key]*service
		events   ring
		err      error
	)
	head, _ := br.Peek(len(snapMagic))
	switch {
	case string(head) == snapMagic:
		services, events, err = readBinarySnapshot(br, in, limit)
	case len(head) > 0 && head[0] == '{':
		services, events, err = readJSONSnapshot(br, in, limit)
	default:
		return fmt.Errorf("state: not a Muster snapshot (it starts with %q)", head)
	}
	if err != nil {
		return err
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	s.services = services
	s.events = events
	s.intern = in
	s.rebuildReadiness()
	if s.observer != nil {
		s.observer.Reset()
		tellRestored(s.observer, services)
	}
	close(s.notify)
	s.notify = make(chan struct{})
	return nil
}

// tellRestored tells obs of every restored instance: from one goroutine per
// CPU if obs is a ParallelObserver (a million lease entries take a while),
// else from this one.
func tellRestored(obs Observer, services map[Key]*service) {
	workers := runtime.GOMAXPROCS(0)
	if _, ok := obs.(ParallelObserver); !ok || workers < 2 || len(services) < 2 {
		for _, svc := range services {
			for _, inst := range svc.instances {
				obs.InstanceAdded(inst)
			}
		}
		return
	}
	work := make(chan *service, len(services))
	for _, svc := range services {
		work <- svc
	}
	close(work)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for svc := range work {
				for _, inst := range svc.instances {
					obs.InstanceAdded(inst)
				}
			}
		})
	}
	wg.Wait()
}

// readJSONSnapshot reads a snapshot of version 1: a stream of JSON values,
// a header, then one value per service, then one per event.
func readJSONSnapshot(r io.Reader, in *interner, limit int) (map[Key]*service, ring, error) {
	dec := json.NewDecoder(r)
	var h snapHeader
	if err := dec.Decode(&h); err != nil {
		return nil, ring{}, fmt.Errorf("state: reading snapshot header: %w", err)
	}
	if h.Version != jsonSnapshotVersion {
		return nil, ring{}, fmt.Errorf("state: JSON snapshot version %d is not supported (want %d)", h.Version, jsonSnapshotVersion)
	}
	if h.Services < 0 || h.Events < 0 {
		return nil, ring{}, fmt.Errorf("state: snapshot header counts %d services and %d events", h.Services, h.Events)
	}
	services := make(map[Key]*service, min(h.Services, 1<<16))
	for i := 0; i < h.Services; i++ {
		var ss snapService
		if err := dec.Decode(&ss); err != nil {
			return nil, ring{}, fmt.Errorf("state: reading snapshot service %d: %w", i, err)
		}
		k := Key{ss.Namespace, ss.Name}
		svc, err := jsonService(&ss, in)
		if err == nil && services[k] != nil {
			err = errors.New("twice")
		}
		if err != nil {
			return nil, ring{}, fmt.Errorf("state: snapshot service %s: %w", k, err)
		}
		services[k] = svc
	}
	events := newRing(limit)
	events.last = h.LastEvent - uint64(h.Events)
	for i := 0; i < h.Events; i++ {
		var e api.Event
		if err := dec.Decode(&e); err != nil {
			return nil, ring{}, fmt.Errorf("state: reading snapshot event %d: %w", i, err)
		}
		if e.ID != events.last+1 {
			return nil, ring{}, fmt.Errorf("state: snapshot event %d has id %d, want %d", i, e.ID, events.last+1)
		}
		events.push(e)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, ring{}, errors.New("state: data after the snapshot's last event")
	}
	return services, events, nil
}

// jsonService builds a service of a JSON snapshot, refusing what the
// store could not hold: a null or repeated revision or instance, a default
// tag that names no revision, a definition that is not valid.
func jsonService(ss *snapService, in *interner) (*service, error) {
	svc := &service{defaultTag: ss.DefaultTag, policy: ss.Policy, definition: ss.Definition,
		revisions: make(map[string]*Revision, len(ss.Revisions)), instances: make(map[string]*Instance, len(ss.Instances))}
	for _, r := range ss.Revisions {
		if r == nil || svc.revisions[r.Tag] != nil {
			return nil, errors.New("a null or repeated revision")
		}
		svc.revisions[r.Tag] = r
	}
	for _, inst := range ss.Instances {
		if inst == nil || svc.instances[inst.ID] != nil {
			return nil, errors.New("a null or repeated instance")
		}
		in.instance(inst)
		svc.instances[inst.ID] = inst
	}
	if svc.defaultTag != "" && svc.revisions[svc.defaultTag] == nil {
		return nil, fmt.Errorf("default revision %s is not among its revisions", svc.defaultTag)
	}
	if svc.definition != nil {
		if err := registry.ValidateDefinition(svc.definition); err != nil {
			return nil, fmt.Errorf("definition: %w", err)
		}
	}
	return svc, nil
}

// readBinarySnapshot reads a snapshot written by WriteTo.
func readBinarySnapshot(br *bufio.Reader, in *interner, limit int) (map[Key]*service, ring, error) {
	_, _ = br.Discard(len(snapMagic)) // Restore peeked them
	r := &snapReader{r: br, in: in}
	if v := r.uvarint(); r.err == nil && v != snapshotVersion {
		return nil, ring{}, fmt.Errorf("state: snapshot version %d is not supported (want %d): written by a newer Muster?", v, snapshotVersion)
	}
	last := r.uvarint()
	nServices := r.count(math.MaxInt32)
	nEvents := r.count(math.MaxInt32)
	if r.err == nil && uint64(nEvents) > last {
		r.fail(fmt.Errorf("%d events but the last id is %d", nEvents, last))
	}
	events := r.events(last, nEvents, limit)
	// Encoding the retained events for the feed (JSON, by reflection) is a
	// good part of a restore: it runs beside the decoding of the services.
	encoded := make(chan [][]byte, 1)
	go func() { encoded <- encodeEvents(events) }()
	services := make(map[Key]*service, min(nServices, 1<<16))
	for i := 0; i < nServices && r.err == nil; i++ {
		k, svc := r.service()
		if _, dup := services[k]; dup && r.err == nil {
			r.fail(fmt.Errorf("service %s twice", k))
		}
		services[k] = svc
	}
	if r.err == nil {
		if _, err := br.ReadByte(); err != io.EOF {
			r.fail(errors.New("data after the last service"))
		}
	}
	lines := <-encoded
	if r.err != nil {
		return nil, ring{}, fmt.Errorf("state: reading snapshot: %w", r.err)
	}
	ev := newRing(limit)
	ev.last = last - uint64(len(events))
	for i := range events {
		ev.pushEncoded(events[i], lines[i])
	}
	return services, ev, nil
}

// events reads the n events of a snapshot whose newest id is last, and
// returns those that a ring of limit retains, with payloads of their own.
func (r *snapReader) events(last uint64, n, limit int) []api.Event {
	skip := max(n-limit, 0)
	out := make([]api.Event, 0, min(n-skip, 1<<20))
	next := last - uint64(n) + 1
	for i := 0; i < n && r.err == nil; i++ {
		e := api.Event{ID: r.uvarint(), Type: r.str(), Namespace: r.str(), Service: r.str(), Time: r.time()}
		payload := r.raw()
		if r.err == nil && e.ID != next {
			r.fail(fmt.Errorf("event %d has id %d, want %d", i, e.ID, next))
		}
		if r.err == nil && !json.Valid(payload) {
			r.fail(fmt.Errorf("event %d has a payload that is not JSON", e.ID))
		}
		next++
		if i >= skip && r.err == nil {
			e.Payload = bytes.Clone(payload)
			out = append(out, e)
		}
	}
	return out
}

// encodeEvents returns encodeEvent of each event.
func encodeEvents(events []api.Event) [][]byte {
	out := make([][]byte, len(events))
	for i := range events {
		out[i] = encodeEvent(&events[i])
	}
	return out
}

// service reads what snapWriter.service wrote.
func (r *snapReader) service() (Key, *service) {
	k := Key{Namespace: r.str(), Name: r.str()}
	svc := &service{defaultTag: r.str()}
	if b := r.raw(); len(b) > 0 && r.err == nil {
		svc.policy = new(api.Policy)
		if err := json.Unmarshal(b, svc.policy); err != nil {
			r.fail(fmt.Errorf("policy of %s: %w", k, err))
		}
	}
	if b := r.raw(); len(b) > 0 && r.err == nil {
		svc.definition = new(api.Definition)
		if err := json.Unmarshal(b, svc.definition); err != nil {
			r.fail(fmt.Errorf("definition of %s: %w", k, err))
		} else if err := registry.ValidateDefinition(svc.definition); err != nil {
			// Restore rebuilds the readiness index from it, which relies on it.
			r.fail(fmt.Errorf("definition of %s: %w", k, err))
		}
	}
	n := r.count(math.MaxInt32)
	svc.revisions = make(map[string]*Revision, min(n, 1<<16))
	for range n {
		rev := &Revision{Tag: r.str(), CreatedAt: r.time()}
		rev.Metadata = r.pairs().Map()
		rev.NotDefault = r.boolean()
		if r.err != nil {
			break
		}
		if _, dup := svc.revisions[rev.Tag]; dup {
			r.fail(fmt.Errorf("revision %s of %s twice", rev.Tag, k))
			break
		}
		svc.revisions[rev.Tag] = rev
	}
	n = r.count(math.MaxInt32)
	svc.instances = make(map[string]*Instance, min(n, 1<<20))
	for range n {
		inst := r.readInstance(k)
		if r.err != nil {
			break
		}
		if _, dup := svc.instances[inst.ID]; dup {
			r.fail(fmt.Errorf("instance %s/%s twice", k, inst.ID))
			break
		}
		svc.instances[inst.ID] = inst
	}
	if r.err == nil && svc.defaultTag != "" && svc.revisions[svc.defaultTag] == nil {
		r.fail(fmt.Errorf("default revision %s of %s is not among its revisions", svc.defaultTag, k))
	}
	return k, svc
}
