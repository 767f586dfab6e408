package state

import (
	"bufio"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"

	"github.com/muster-registry/muster/api"
)

// snapshotVersion is written first in every snapshot; Restore refuses others.
const snapshotVersion = 1

// Snapshot is a point-in-time copy of the Store. Taking it holds the read lock
// only while references are collected (records are immutable); writing it
// takes no lock, so it may run while the Store is being written.
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
		ss.Instances = sortedInstances(svc)
		snap.services = append(snap.services, ss)
	}
	snap.header = snapHeader{Version: snapshotVersion, LastEvent: s.events.last, Services: len(snap.services), Events: len(snap.events)}
	return snap
}

// WriteTo encodes the snapshot as a stream of JSON values: a header, then one
// value per service, then one per event, in a fixed order so that equal states
// encode to equal bytes.
func (snap *Snapshot) WriteTo(w io.Writer) (int64, error) {
	slices.SortFunc(snap.services, func(a, b snapService) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	for i := range snap.services {
		slices.SortFunc(snap.services[i].Revisions, func(a, b *Revision) int { return cmp.Compare(a.Tag, b.Tag) })
	}
	cw := &countingWriter{w: bufio.NewWriterSize(w, 1<<16)}
	enc := json.NewEncoder(cw)
	if err := enc.Encode(snap.header); err != nil {
		return cw.n, fmt.Errorf("state: writing snapshot header: %w", err)
	}
	for i := range snap.services {
		if err := enc.Encode(&snap.services[i]); err != nil {
			return cw.n, fmt.Errorf("state: writing snapshot service: %w", err)
		}
	}
	for i := range snap.events {
		if err := enc.Encode(&snap.events[i]); err != nil {
			return cw.n, fmt.Errorf("state: writing snapshot event: %w", err)
		}
	}
	if err := cw.w.(*bufio.Writer).Flush(); err != nil {
		return cw.n, fmt.Errorf("state: writing snapshot: %w", err)
	}
	return cw.n, nil
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

// Restore replaces the Store's contents with a snapshot written by WriteTo.
// On error the Store is left unchanged. Watchers are woken, and the observer
// is reset and told of every restored instance.
func (s *Store) Restore(r io.Reader) error {
	dec := json.NewDecoder(bufio.NewReaderSize(r, 1<<16))
	var h snapHeader
	if err := dec.Decode(&h); err != nil {
		return fmt.Errorf("state: reading snapshot header: %w", err)
	}
	if h.Version != snapshotVersion {
		return fmt.Errorf("state: snapshot version %d is not supported (want %d)", h.Version, snapshotVersion)
	}
	services := make(map[Key]*service, h.Services)
	for i := 0; i < h.Services; i++ {
		var ss snapService
		if err := dec.Decode(&ss); err != nil {
			return fmt.Errorf("state: reading snapshot service %d: %w", i, err)
		}
		svc := &service{defaultTag: ss.DefaultTag, policy: ss.Policy, definition: ss.Definition, revisions: make(map[string]*Revision, len(ss.Revisions)), instances: make(map[string]*Instance, len(ss.Instances))}
		for _, r := range ss.Revisions {
			svc.revisions[r.Tag] = r
		}
		for _, inst := range ss.Instances {
			svc.instances[inst.ID] = inst
		}
		services[Key{ss.Namespace, ss.Name}] = svc
	}
	s.mu.RLock()
	limit := s.events.limit
	s.mu.RUnlock()
	events := newRing(limit)
	events.last = h.LastEvent - uint64(h.Events)
	for i := 0; i < h.Events; i++ {
		var e api.Event
		if err := dec.Decode(&e); err != nil {
			return fmt.Errorf("state: reading snapshot event %d: %w", i, err)
		}
		if e.ID != events.last+1 {
			return fmt.Errorf("state: snapshot event %d has id %d, want %d", i, e.ID, events.last+1)
		}
		events.push(e)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	s.services = services
	s.events = events
	s.rebuildReadiness()
	if s.observer != nil {
		s.observer.Reset()
		for _, svc := range services {
			for _, inst := range svc.instances {
				s.observer.InstanceAdded(inst)
			}
		}
	}
	close(s.notify)
	s.notify = make(chan struct{})
	return nil
}
