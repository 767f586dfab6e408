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

// BenchmarkApplyRegisterInstance decodes and applies one register command,
// as every replica does for every registration.
func BenchmarkApplyRegisterInstance(b *testing.B) {
	leases, err := lease.New(lease.Options{})
	if err != nil {
		b.Fatal(err)
	}
	f := fsm.New(state.New(0, leases))
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	entries := make([][]byte, b.N)
	for i := range entries {
		entries[i], err = fsm.Encode(&fsm.RegisterInstance{Time: now, Instance: state.Instance{
			Namespace: "bench", Service: fmt.Sprintf("svc-%d", i%10), ID: fmt.Sprintf("i-%08d", i),
			Address: "10.0.0.1", Port: 8080, Tags: []string{"bench"}, HeartbeatTimeout: 30, Token: lease.NewToken(),
		}})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if res := f.Apply(&raft.Log{Index: uint64(i + 1), Data: entries[i]}).(fsm.Result); res.Err != nil {
			b.Fatal(res.Err)
		}
	}
}
