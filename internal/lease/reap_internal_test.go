package lease

import (
	"fmt"
	"testing"
	"time"

	"github.com/muster-registry/muster/internal/state"
)

// BenchmarkReapWave is one reaper round of an expiry wave: 6,000
// registrations whose deadlines passed within one fifth of a tick, as in
// `muster bench --scenario expiry`, collected from the wheel, sorted and
// cut into batches. ns/op is per round.
func BenchmarkReapWave(b *testing.B) {
	const n = 6000
	base := time.Date(2026, 11, 23, 7, 0, 0, 0, time.UTC)
	clock := base.Add(time.Second) // registered in the past: leases start at RegisteredAt
	tb, err := New(Options{Now: func() time.Time { return clock }})
	if err != nil {
		b.Fatal(err)
	}
	for i := range n {
		tb.InstanceAdded(&state.Instance{Namespace: "n01", Service: "expiry", ID: fmt.Sprintf("i-%07d", (i*7919)%n),
			RegIndex: uint64(i + 1), HeartbeatTimeout: 3, RegisteredAt: base.Add(10*time.Millisecond + time.Duration(i)*20*time.Millisecond/n)})
	}
	// The round looks into the tick under way, as in a wave.
	now := base.Add(3*time.Second + 30*time.Millisecond)
	tk := tickOf(now)
	var due []dueEntry
	b.ReportAllocs()
	for b.Loop() {
		due = tb.collect(due[:0], tk, tk-1, now)
		if len(due) != n {
			b.Fatalf("%d due, want %d", len(due), n)
		}
		sortDue(due)
		for rest := due; len(rest) > 0; rest = rest[min(len(rest), DefaultBatch):] {
			_ = expiries(rest[:min(len(rest), DefaultBatch)])
		}
		for _, d := range due { // due again next round
			s, h := tb.shardFor(d.inst.Key())
			s.get(h, d.inst.Key()).expiring = false
		}
	}
}
