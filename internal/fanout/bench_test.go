package fanout_test

import (
	"context"
	"testing"

	"github.com/muster-registry/muster/internal/fanout"
	"github.com/muster-registry/muster/internal/state"
)

// BenchmarkFanOut is one change followed by 10,000 subscriptions of its
// service: the write, the hub's read and hand-out, and every
// subscription's Take, as their streams would do on waking. Per op: one
// change and 10,000 takes.
func BenchmarkFanOut(b *testing.B) {
	st := state.New(0, nil)
	hub := fanout.New(st)
	f := state.EventFilter{Namespace: "ns", Service: "watched"}
	subs := make([]*fanout.Subscription, 10_000)
	bufs := make([][]fanout.Frame, len(subs))
	for i := range subs {
		subs[i] = hub.Subscribe(f)
		defer subs[i].Close()
	}
	ctx := context.Background()
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		n++
		join(b, st, "ns", "watched", n)
		for i, s := range subs {
			select {
			case <-s.Wake():
			case <-ctx.Done():
			}
			frames, _, lost := s.Take(bufs[i])
			if lost || len(frames) != 1 {
				b.Fatalf("took %d frames, lost %v", len(frames), lost)
			}
			bufs[i] = frames
		}
	}
}
