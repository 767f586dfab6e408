package state_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/muster-registry/muster/api"
	"github.com/muster-registry/muster/internal/state"
)

func benchStore(b *testing.B, services, perService int) *state.Store {
	b.Helper()
	st := state.New(0, nil)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	idx := uint64(0)
	for s := range services {
		for i := range perService {
			idx++
			inst := &state.Instance{Namespace: "bench", Service: fmt.Sprintf("svc-%d", s), ID: fmt.Sprintf("i-%05d", i),
				Address: "10.0.0.1", Port: 8080, Tags: []string{"bench"}, HeartbeatTimeout: 30, RegIndex: idx, Token: "t"}
			if _, err := st.RegisterInstance(now, inst, false); err != nil {
				b.Fatal(err)
			}
		}
	}
	return st
}

// BenchmarkInstances reads a 100-instance service, the read behind every
// lookup (GET …/instances).
func BenchmarkInstances(b *testing.B) {
	st := benchStore(b, 10, 100)
	k := state.Key{Namespace: "bench", Name: "svc-3"}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if insts, _, _ := st.Instances(k); len(insts) != 100 {
				b.Fatalf("%d instances", len(insts))
			}
		}
	})
}

// BenchmarkEventsFilter scans the retained feed for one service's events
// of one type, as a filtered watcher's catch-up does.
func BenchmarkEventsFilter(b *testing.B) {
	st := benchStore(b, 10, 100) // 1,000 join events over 10 services
	f := state.EventFilter{Service: "svc-7", Types: []string{api.EventInstanceJoin}}
	b.ReportAllocs()
	for b.Loop() {
		evs, _, err := st.Events(0, f, 1000)
		if err != nil || len(evs) != 100 {
			b.Fatalf("%d events, %v", len(evs), err)
		}
	}
}
