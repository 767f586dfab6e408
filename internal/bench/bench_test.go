package bench

import (
	"context"
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/muster-registry/muster/api"
	"github.com/muster-registry/muster/client"
	"github.com/muster-registry/muster/internal/servertest"
)

// These benchmarks run the load generator's operations against a durable
// in-process server (Raft, bbolt and the token journal on disk), so one op
// costs what it costs in `muster bench`: the SDK, net/http on both sides over
// loopback, the handler, the lease table and the journal. Besides ns/op they
// report cpu-ns/op, the process's CPU time (user + system) per op, which
// other load on a shared machine disturbs far less than wall time.

// benchFixture starts a durable server and prepares n instances.
func benchFixture(b *testing.B, n, concurrency int) (*bench, []member) {
	b.Helper()
	srv := servertest.Start(b, servertest.Options{DataDir: b.TempDir()})
	c, err := client.New(srv.URL)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.CloseIdleConnections)
	bn := &bench{cfg: Config{Concurrency: concurrency, Namespace: "bench"}, c: c}
	members, err := bn.prepare(context.Background(), services("bench", 10), n, maxTimeout)
	if err != nil {
		b.Fatal(err)
	}
	return bn, members
}

// cpuTime is the CPU time the process has used so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// runOps runs op b.N times over workers goroutines, worker w calling
// op(w, i) for its i-th op, and reports the CPU time per op.
func runOps(b *testing.B, workers int, op func(w, i int) error) {
	b.Helper()
	var next atomic.Int64
	var failed atomic.Pointer[error]
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime(b)
	done := make(chan struct{})
	for w := range workers {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := 0; next.Add(1) <= int64(b.N); i++ {
				if err := op(w, i); err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
			}
		}()
	}
	for range workers {
		<-done
	}
	cpu := cpuTime(b) - cpu0
	b.StopTimer()
	if err := failed.Load(); err != nil {
		b.Fatal(*err)
	}
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// BenchmarkSDK prepares one durable server with 8,000 instances for its
// sub-benchmarks:
//
//   - heartbeat is one heartbeat of the heartbeat scenario: 64 workers over
//     1,000 instances, each worker renewing its own.
//   - batch is one request of the batch scenario: 8 workers, each renewing
//     its own 1,000 instances with one POST /v1/heartbeats. Divide cpu-ns/op
//     by 1,000 for the cost of one renewal.
func BenchmarkSDK(b *testing.B) {
	const batchWorkers, size, beatWorkers = 8, 1000, 64
	bn, members := benchFixture(b, batchWorkers*size, beatWorkers)
	ctx := context.Background()
	b.Run("heartbeat", func(b *testing.B) {
		beats := members[:1000]
		own := owned(beats, beatWorkers)
		runOps(b, beatWorkers, func(w, i int) error {
			m := &beats[own[w][i%len(own[w])]]
			hb, err := bn.c.Heartbeat(ctx, "bench", m.svc, m.id, m.token)
			if err != nil {
				return err
			}
			m.token = hb.Token
			return nil
		})
	})
	b.Run("batch", func(b *testing.B) {
		scratch := make([][]api.BatchHeartbeat, batchWorkers)
		runOps(b, batchWorkers, func(w, _ int) error {
			k, err := bn.renewBatch(ctx, members[w*size:(w+1)*size], &scratch[w])
			if err == nil && k != size {
				err = fmt.Errorf("%d of %d renewed", k, size)
			}
			return err
		})
	})
}
