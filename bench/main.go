// Command etcd-bench runs the register, heartbeat and lookup scenarios of
// `muster bench` against etcd, with the same flags and JSON result, so the
// two can be compared (scripts/compare-etcd.sh). It is its own module so the
// main module does not depend on the etcd client.
//
//   - register: grant a lease, put a key with it (what registering an
//     instance with a heartbeat timeout is in etcd).
//   - heartbeat: one KeepAliveOnce of a lease, over --instances leases.
//   - lookup: range over a prefix holding --instances/10 keys.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/muster-registry/muster/internal/bench"
)

func main() {
	var (
		endpoints   = flag.String("endpoints", "127.0.0.1:2379", "etcd endpoints, comma-separated")
		scenario    = flag.String("scenario", "heartbeat", "register, heartbeat or lookup")
		concurrency = flag.Int("concurrency", 64, "closed-loop workers")
		duration    = flag.Duration("duration", 10*time.Second, "length of the measured phase")
		instances   = flag.Int("instances", 1000, "leases (heartbeat) or keys (lookup) prepared first")
		conns       = flag.Int("conns", 8, "gRPC connections the workers share round-robin")
		output      = flag.String("o", "table", "table or json")
	)
	flag.Parse()
	res, err := run(*endpoints, *scenario, *concurrency, *conns, *instances, *duration)
	if err != nil {
		fmt.Fprintln(os.Stderr, "etcd-bench:", err)
		os.Exit(1)
	}
	if *output == "json" {
		b, _ := json.Marshal(res)
		fmt.Println(string(b))
		return
	}
	fmt.Printf("SCENARIO\tCONC\tOPS\tOPS/S\tP50 MS\tP99 MS\tMAX MS\tERRORS\n%s\t%d\t%d\t%.0f\t%.2f\t%.2f\t%.2f\t%d\n",
		res.Scenario, res.Concurrency, res.Ops, res.OpsPerS, res.P50Ms, res.P99Ms, res.MaxMs, res.Errors)
}

// value is about the size of a registered instance's JSON.
var value = strings.Repeat("x", 300)

func run(endpoints, scenario string, concurrency, nconns, instances int, d time.Duration) (bench.Result, error) {
	ctx := context.Background()
	clients := make([]*clientv3.Client, max(nconns, 1))
	for i := range clients {
		c, err := clientv3.New(clientv3.Config{Endpoints: strings.Split(endpoints, ","), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			return bench.Result{}, err
		}
		defer c.Close()
		clients[i] = c
	}
	cl := func(w int) *clientv3.Client { return clients[w%len(clients)] }
	res := bench.Result{Scenario: scenario, Concurrency: concurrency}
	prefix := fmt.Sprintf("/bench/%d/", time.Now().UnixNano())
	var op func(ctx context.Context, w, i int) error
	switch scenario {
	case "register":
		op = func(ctx context.Context, w, i int) error {
			l, err := cl(w).Grant(ctx, 120)
			if err != nil {
				return err
			}
			_, err = cl(w).Put(ctx, fmt.Sprintf("%sregister/%d-%d", prefix, w, i), value, clientv3.WithLease(l.ID))
			return err
		}
	case "heartbeat":
		leases := make([]clientv3.LeaseID, instances)
		if err := parallel(concurrency, instances, func(w, i int) error {
			l, err := cl(w).Grant(ctx, 120)
			if err != nil {
				return err
			}
			leases[i] = l.ID
			_, err = cl(w).Put(ctx, fmt.Sprintf("%sheartbeat/%d", prefix, i), value, clientv3.WithLease(l.ID))
			return err
		}); err != nil {
			return res, err
		}
		res.Instances = instances
		concurrency = min(concurrency, instances)
		res.Concurrency = concurrency
		op = func(ctx context.Context, w, i int) error {
			// Worker w owns every concurrency-th lease, as in muster bench.
			owns := (instances - w + concurrency - 1) / concurrency
			k := w + (i%owns)*concurrency
			_, err := cl(w).KeepAliveOnce(ctx, leases[k])
			return err
		}
	case "lookup":
		if err := parallel(concurrency, instances, func(w, i int) error {
			_, err := cl(w).Put(ctx, fmt.Sprintf("%slookup-%d/%07d", prefix, i%10, i), value)
			return err
		}); err != nil {
			return res, err
		}
		res.Instances = instances
		want := int64(instances / 10)
		op = func(ctx context.Context, w, i int) error {
			r, err := cl(w).Get(ctx, fmt.Sprintf("%slookup-%d/", prefix, (w+i)%10), clientv3.WithPrefix())
			if err == nil && r.Count < want {
				err = fmt.Errorf("ranged %d keys, want %d", r.Count, want)
			}
			return err
		}
	default:
		return res, fmt.Errorf("unknown scenario %q (register, heartbeat or lookup)", scenario)
	}
	h, elapsed, errs, first := loop(concurrency, d, op)
	res.DurationS, res.Ops, res.Errors, res.FirstError = elapsed.Seconds(), h.Count(), errs, first
	res.OpsPerS = float64(h.Count()) / elapsed.Seconds()
	res.MeanMs, res.P50Ms, res.P90Ms, res.P99Ms, res.MaxMs = h.Mean(), h.Quantile(0.5), h.Quantile(0.9), h.Quantile(0.99), h.Max()
	return res, nil
}

// parallel calls fn for i in [0, n) on k goroutines (w is the goroutine).
func parallel(k, n int, fn func(w, i int) error) error {
	var next atomic.Int64
	var mu sync.Mutex
	var first error
	var wg sync.WaitGroup
	for w := range min(k, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := fn(w, i); err != nil {
					mu.Lock()
					first = cmpErr(first, err)
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// loop runs n closed-loop workers for d, timing the ops that succeed.
func loop(n int, d time.Duration, op func(ctx context.Context, w, i int) error) (*bench.Histogram, time.Duration, uint64, string) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	hists := make([]bench.Histogram, n)
	var errs atomic.Uint64
	var once sync.Once
	var first string
	start := time.Now()
	var wg sync.WaitGroup
	for w := range n {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				t0 := time.Now()
				err := op(ctx, w, i)
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					errs.Add(1)
					once.Do(func() { first = err.Error() })
					continue
				}
				hists[w].Record(time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	total := new(bench.Histogram)
	for w := range hists {
		total.Merge(&hists[w])
	}
	return total, elapsed, errs.Load(), first
}
