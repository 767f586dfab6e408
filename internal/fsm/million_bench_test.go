package fsm_test

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/muster-registry/muster/internal/fsm"
	"github.com/muster-registry/muster/internal/lease"
	"github.com/muster-registry/muster/internal/state"
)

// millionInstances is the size of the memory target of the performance
// issue: 1,000,000 instances of 4 tags and 4 metadata pairs each.
const millionInstances = 1_000_000

// millionHeapProfile, if set, is where BenchmarkMillionInstances writes a
// heap profile of the filled state (-memprofile is written after the
// benchmark, when the state is already garbage).
var millionHeapProfile = flag.String("million-heapprofile", "", "file for a heap profile of BenchmarkMillionInstances' 1M-instance state")

// BenchmarkMillionInstances applies 1,000,000 RegisterInstance commands
// through FSM.Apply into a Store with a lease Table as its observer (what a
// server holds in memory), then snapshots the state to a file and restores
// it into a fresh Store and Table, as a restart does. It reports the live
// heap per instance (after a GC), the resident memory per instance, and the
// seconds to snapshot and to restore. One iteration takes about a minute
// and several GiB; run it alone:
//
//	go test -run '^$' -bench MillionInstances -benchtime 1x -timeout 30m ./internal/fsm/
//
// Add -args -million-heapprofile=FILE for a heap profile of the filled state.
func BenchmarkMillionInstances(b *testing.B) {
	for range b.N {
		millionInstancesOnce(b)
	}
}

type memPoint struct {
	heapAlloc, heapInuse uint64
	rss, peakRSS         uint64
}

func measureMem(b *testing.B) memPoint {
	debug.FreeOSMemory() // a GC that also returns free pages: RSS is then the live state
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return memPoint{heapAlloc: ms.HeapAlloc, heapInuse: ms.HeapInuse, rss: procStatus(b, "VmRSS:"), peakRSS: procStatus(b, "VmHWM:")}
}

// procStatus answers a size field of /proc/self/status (Linux) in bytes,
// 0 elsewhere.
func procStatus(b *testing.B, field string) uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb << 10
		}
	}
	return 0
}

func perInstance(after, before uint64) float64 {
	return (float64(after) - float64(before)) / millionInstances
}

func millionInstancesOnce(b *testing.B) {
	path := filepath.Join(b.TempDir(), "state.snap")
	fillAndSnapshot(b, path)

	// Restart: the first state is gone; restore into a fresh Store and Table.
	b.StopTimer()
	base := measureMem(b)
	start := time.Now()
	leases, err := lease.New(lease.Options{})
	if err != nil {
		b.Fatal(err)
	}
	f := fsm.New(state.New(0, leases))
	rc, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := f.Restore(rc); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(time.Since(start).Seconds(), "restore-s")
	restored := measureMem(b)
	b.ReportMetric(perInstance(restored.heapAlloc, base.heapAlloc), "restored-heap-alloc-B/instance")
	b.ReportMetric(perInstance(restored.rss, base.rss), "restored-rss-B/instance")
	runtime.KeepAlive(f)
}

// fillAndSnapshot applies the registrations, measures, and writes the
// snapshot to path.
func fillAndSnapshot(b *testing.B, path string) {
	b.StopTimer()
	base := measureMem(b)
	leases, err := lease.New(lease.Options{})
	if err != nil {
		b.Fatal(err)
	}
	store := state.New(0, leases) // the server's default: 100,000 retained events
	f := fsm.New(store)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b.StartTimer()
	start := time.Now()
	for i := range millionInstances {
		// Encoded one at a time so the log entries are not live at the end.
		data, err := fsm.Encode(&fsm.RegisterInstance{Time: now, Instance: state.Instance{
			Namespace: "prod", Service: fmt.Sprintf("service-%04d", i%1000), ID: fmt.Sprintf("instance-%07d", i),
			Address: fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), Port: 8080,
			Tags: []string{"http", "v2", "zone-a", fmt.Sprintf("shard-%d", i%64)},
			Metadata: state.MetadataOf(map[string]string{
				"region": "eu-west-1", "zone": "eu-west-1a",
				"version": fmt.Sprintf("1.%d.%d", i%7, i%13), "host": fmt.Sprintf("node-%05d", i%20000),
			}),
			HeartbeatTimeout: 30, Token: lease.NewToken(),
		}})
		if err != nil {
			b.Fatal(err)
		}
		if res := f.Apply(&raft.Log{Index: uint64(i + 1), Data: data}).(fsm.Result); res.Err != nil {
			b.Fatal(res.Err)
		}
	}
	applyS := time.Since(start).Seconds()
	b.StopTimer()
	full := measureMem(b)
	b.ReportMetric(perInstance(full.heapAlloc, base.heapAlloc), "heap-alloc-B/instance")
	b.ReportMetric(perInstance(full.heapInuse, base.heapInuse), "heap-inuse-B/instance")
	b.ReportMetric(perInstance(full.rss, base.rss), "rss-B/instance")
	b.ReportMetric(perInstance(full.peakRSS, base.rss), "peak-rss-B/instance")
	b.ReportMetric(applyS, "apply-s")
	if *millionHeapProfile != "" {
		writeHeapProfile(b, *millionHeapProfile)
	}

	// Snapshot as raft does: FSM.Snapshot under the store's lock, then
	// Persist (WriteTo) into a file, fsync'd like raft's file sink.
	start = time.Now()
	snap, err := f.Snapshot()
	if err != nil {
		b.Fatal(err)
	}
	captureS := time.Since(start).Seconds()
	file, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(file, 1<<20)
	if err := snap.Persist(&fileSink{Writer: w, f: file}); err != nil {
		b.Fatal(err)
	}
	snapS := time.Since(start).Seconds()
	snap.Release()
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(captureS, "snapshot-capture-s")
	b.ReportMetric(snapS, "snapshot-s")
	b.ReportMetric(float64(fi.Size())/millionInstances, "snapshot-B/instance")

}

func writeHeapProfile(b *testing.B, path string) {
	pf, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer pf.Close()
	if err := pprof.WriteHeapProfile(pf); err != nil {
		b.Fatal(err)
	}
}

// fileSink is a raft.SnapshotSink over a buffered file; Close flushes and
// fsyncs it.
type fileSink struct {
	*bufio.Writer
	f *os.File
}

func (s *fileSink) ID() string    { return "bench" }
func (s *fileSink) Cancel() error { return s.f.Close() }
func (s *fileSink) Close() error {
	if err := s.Flush(); err != nil {
		return err
	}
	if err := s.f.Sync(); err != nil {
		return err
	}
	return s.f.Close()
}
