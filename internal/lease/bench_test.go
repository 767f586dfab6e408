package lease_test

import (
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/muster-registry/muster/internal/lease"
	"github.com/muster-registry/muster/internal/state"
)

// BenchmarkHeartbeatParallel is the heartbeat hot path without HTTP: check
// the token, rotate it, move the deadline. Each goroutine renews its own
// instance (tokens rotate, so an instance has one heartbeater). No journal.
func BenchmarkHeartbeatParallel(b *testing.B) {
	t, err := lease.New(lease.Options{})
	if err != nil {
		b.Fatal(err)
	}
	t.SetLeader(true)
	const n = 1024
	tokens := make([]string, n)
	for i := range n {
		tokens[i] = lease.NewToken()
		t.InstanceAdded(&state.Instance{Namespace: "bench", Service: "svc", ID: fmt.Sprintf("i-%04d", i),
			HeartbeatTimeout: 120, RegIndex: uint64(i + 1), Token: tokens[i], RegisteredAt: time.Now()})
	}
	var next atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(1)-1) % n
		k := state.InstanceKey{Namespace: "bench", Service: "svc", ID: fmt.Sprintf("i-%04d", i)}
		tok := tokens[i]
		for pb.Next() {
			var err error
			if tok, _, err = t.Heartbeat(k, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkTokenMismatch is the refusal path: a stale token changes nothing.
func BenchmarkTokenMismatch(b *testing.B) {
	t, err := lease.New(lease.Options{})
	if err != nil {
		b.Fatal(err)
	}
	t.SetLeader(true)
	t.InstanceAdded(&state.Instance{Namespace: "bench", Service: "svc", ID: "i", HeartbeatTimeout: 120, RegIndex: 1, Token: "current", RegisteredAt: time.Now()})
	k := state.InstanceKey{Namespace: "bench", Service: "svc", ID: "i"}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, _, err := t.Heartbeat(k, "stale"); err == nil {
				b.Fatal("a stale token renewed")
			}
		}
	})
}

// BenchmarkHeartbeatJournaled is BenchmarkHeartbeatParallel with the token
// journal on disk and 64 heartbeating goroutines, as in the heartbeat
// scenario: every rotation is written (group-committed) before it returns.
func BenchmarkHeartbeatJournaled(b *testing.B) {
	j, err := lease.OpenFileJournal(filepath.Join(b.TempDir(), "tokens.journal"), nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	t, err := lease.New(lease.Options{Journal: j})
	if err != nil {
		b.Fatal(err)
	}
	t.SetLeader(true)
	defer t.SetLeader(false)
	const n = 1024
	tokens := make([]string, n)
	for i := range n {
		tokens[i] = lease.NewToken()
		t.InstanceAdded(&state.Instance{Namespace: "bench", Service: "svc", ID: fmt.Sprintf("i-%04d", i),
			HeartbeatTimeout: 120, RegIndex: uint64(i + 1), Token: tokens[i], RegisteredAt: time.Now()})
	}
	var next atomic.Int64
	b.SetParallelism(32)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(1)-1) % n
		k := state.InstanceKey{Namespace: "bench", Service: "svc", ID: fmt.Sprintf("i-%04d", i)}
		tok := tokens[i]
		for pb.Next() {
			var err error
			if tok, _, err = t.Heartbeat(k, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
}
