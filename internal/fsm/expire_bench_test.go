package fsm_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/muster-registry/muster/internal/fsm"
	"github.com/muster-registry/muster/internal/lease"
	"github.com/muster-registry/muster/internal/state"
)

// expireWave is one expiry batch of the bench's wave: n instances of one
// service, each timing out at its own millisecond.
func expireWave(n int) (register func(f *fsm.FSM, first uint64), cmd *fsm.ExpireInstances) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cmd = &fsm.ExpireInstances{Time: now.Add(time.Minute)}
	entries := make([][]byte, n)
	for i := range n {
		inst := state.Instance{
			Namespace: "n01", Service: "expiry", ID: fmt.Sprintf("expiry-%06d", i),
			Address: "10.0.0.1", Port: 8080, HeartbeatTimeout: 103, Token: lease.NewToken(),
		}
		var err error
		if entries[i], err = fsm.Encode(&fsm.RegisterInstance{Time: now, Instance: inst}); err != nil {
			panic(err)
		}
		cmd.Items = append(cmd.Items, state.Expiry{Key: inst.Key(), Deadline: now.Add(103*time.Second + time.Duration(i)*time.Millisecond/16)})
	}
	register = func(f *fsm.FSM, first uint64) {
		for i, e := range entries {
			if res := f.Apply(&raft.Log{Index: first + uint64(i), Data: e}).(fsm.Result); res.Err != nil {
				panic(res.Err)
			}
		}
	}
	return register, cmd
}

// BenchmarkExpireBatch encodes, decodes and applies one ExpireInstances
// command of 5,000 instances, the reaper's batch; ns/op is per batch.
func BenchmarkExpireBatch(b *testing.B) {
	const n = lease.DefaultBatch
	register, cmd := expireWave(n)
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := fsm.Encode(cmd); err != nil {
				b.Fatal(err)
			}
		}
	})
	data, err := fsm.Encode(cmd)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		b.ReportMetric(float64(len(data)), "bytes")
		for b.Loop() {
			if _, err := fsm.Decode(data); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("apply", func(b *testing.B) {
		b.ReportAllocs()
		leases, err := lease.New(lease.Options{})
		if err != nil {
			b.Fatal(err)
		}
		// A full ring, as on a server that has run a while.
		f := fsm.New(state.New(n, leases))
		idx := uint64(1)
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			register(f, idx)
			for j := range cmd.Items {
				cmd.Items[j].RegIndex = idx + uint64(j)
			}
			idx += n
			data, err := fsm.Encode(cmd)
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			if got := f.Apply(&raft.Log{Index: idx, Data: data}).(fsm.Result).Value; got != n {
				b.Fatalf("expired %v, want %d", got, n)
			}
			idx++
		}
	})
}
