package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/muster-registry/muster/api"
	"github.com/muster-registry/muster/client"
)

// maxTimeout keeps prepared instances alive through long runs (seconds).
const maxTimeout = api.MaxHeartbeatTimeout

func services(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	return out
}

// register: every op registers a new instance (POST, one Raft commit each).
func (b *bench) register(ctx context.Context, res *Result) error {
	var e errs
	h, el := b.loop(ctx, b.cfg.Concurrency, b.cfg.Duration, &e, func(ctx context.Context, w, i int) error {
		_, err := b.c.RegisterInstance(ctx, b.cfg.Namespace, "register", api.RegisterInstanceRequest{
			Address: "10.0.0.1", Port: 8080, Tags: []string{"bench"}, HeartbeatTimeout: maxTimeout,
		})
		return err
	})
	b.fill(res, h, el, &e)
	return nil
}

// owned splits members evenly over n workers: worker w owns every n-th.
// Tokens rotate on every heartbeat, so an instance has one owner.
func owned(members []member, n int) [][]int {
	out := make([][]int, n)
	for i := range members {
		out[i%n] = append(out[i%n], i)
	}
	return out
}

// heartbeat: workers renew --instances instances, each worker cycling over
// its share.
func (b *bench) heartbeat(ctx context.Context, res *Result) error {
	t0 := time.Now()
	members, err := b.prepare(ctx, []string{"heartbeat"}, b.cfg.Instances, maxTimeout)
	if err != nil {
		return err
	}
	res.PrepareS, res.Instances = time.Since(t0).Seconds(), b.cfg.Instances
	n := min(b.cfg.Concurrency, len(members))
	res.Concurrency = n
	own := owned(members, n)
	var e errs
	h, el := b.loop(ctx, n, b.cfg.Duration, &e, func(ctx context.Context, w, i int) error {
		m := &members[own[w][i%len(own[w])]]
		hb, err := b.c.Heartbeat(ctx, b.cfg.Namespace, m.svc, m.id, m.token)
		if err != nil {
			return err
		}
		m.token = hb.Token
		return nil
	})
	b.fill(res, h, el, &e)
	return nil
}

// lookup: --instances instances over 10 services; every op lists one
// service's instances.
func (b *bench) lookup(ctx context.Context, res *Result) error {
	t0 := time.Now()
	svcs := services("lookup", 10)
	members, err := b.prepare(ctx, svcs, b.cfg.Instances, maxTimeout)
	if err != nil {
		return err
	}
	res.PrepareS, res.Instances = time.Since(t0).Seconds(), b.cfg.Instances
	kctx, stop := context.WithCancel(ctx)
	defer stop()
	go b.keepAlive(kctx, members, 30*time.Second)
	want := b.cfg.Instances / len(svcs)
	var e errs
	h, el := b.loop(ctx, b.cfg.Concurrency, b.cfg.Duration, &e, func(ctx context.Context, w, i int) error {
		l, _, err := b.c.ListInstances(ctx, b.cfg.Namespace, svcs[(w+i)%len(svcs)], client.InstanceListOptions{Limit: 10000})
		if err == nil && len(l.Values) < want {
			err = fmt.Errorf("bench: listed %d instances, want %d", len(l.Values), want)
		}
		return err
	})
	b.fill(res, h, el, &e)
	return nil
}

// watch: --watchers event streams on one service; a change every 100 ms;
// every delivery's latency is measured from just before the change was sent.
func (b *bench) watch(ctx context.Context, res *Result) error {
	const svc = "watched"
	res.Watchers = b.cfg.Watchers
	res.Concurrency = 1
	// The service exists and has an index to follow from.
	if _, err := b.c.PutInstance(ctx, b.cfg.Namespace, svc, "prime", api.RegisterInstanceRequest{Address: "10.0.0.1", Port: 1, HeartbeatTimeout: maxTimeout}); err != nil {
		return err
	}
	_, idx, err := b.c.ListInstances(ctx, b.cfg.Namespace, svc, client.InstanceListOptions{})
	if err != nil {
		return err
	}

	// sent[seq] is when change seq was sent (unix ns); seq 0 is the sync change.
	maxChanges := int(b.cfg.Duration/(100*time.Millisecond)) + 2
	sent := make([]atomic.Int64, maxChanges+1)
	var (
		e     errs
		ready atomic.Int64
		mu    sync.Mutex
		total = new(Histogram)
		recvd atomic.Uint64
		wg    sync.WaitGroup
	)
	wctx, stopWatchers := context.WithCancel(ctx)
	defer stopWatchers()
	t0 := time.Now()
	for range b.cfg.Watchers {
		wg.Go(func() {
			h := new(Histogram)
			seen := false
			err := b.c.StreamEvents(wctx, client.EventQuery{Namespace: b.cfg.Namespace, Service: svc, After: uint64(idx), Types: []string{api.EventInstanceJoin}},
				func(ev api.Event) error {
					now := time.Now()
					var p struct {
						ID string `json:"id"`
					}
					if err := json.Unmarshal(ev.Payload, &p); err != nil {
						return err
					}
					var seq int
					if _, err := fmt.Sscanf(p.ID, "c-%d", &seq); err != nil || seq > maxChanges {
						return nil
					}
					if seq == 0 {
						if !seen {
							seen = true
							ready.Add(1)
						}
						return nil
					}
					h.Record(now.Sub(time.Unix(0, sent[seq].Load())))
					recvd.Add(1)
					return nil
				})
			if err != nil && wctx.Err() == nil {
				e.add(err)
			}
			mu.Lock()
			total.Merge(h)
			mu.Unlock()
		})
	}
	change := func(seq int) error {
		sent[seq].Store(time.Now().UnixNano())
		_, err := b.c.PutInstance(ctx, b.cfg.Namespace, svc, fmt.Sprintf("c-%d", seq), api.RegisterInstanceRequest{Address: "10.0.0.2", Port: 1, HeartbeatTimeout: maxTimeout})
		return err
	}
	// Change 0 is repeated until every watcher has seen it: then all streams are open.
	deadline := time.Now().Add(60*time.Second + time.Duration(b.cfg.Watchers)*time.Millisecond)
	for ready.Load() < int64(b.cfg.Watchers) {
		if time.Now().After(deadline) {
			stopWatchers()
			wg.Wait()
			return fmt.Errorf("bench: only %d of %d watchers connected", ready.Load(), b.cfg.Watchers)
		}
		if err := change(0); err != nil {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
	res.PrepareS = time.Since(t0).Seconds()

	var ops atomic.Uint64
	stopProgress := b.progress(&ops, &e)
	start := time.Now()
	tick := time.NewTicker(100 * time.Millisecond)
	changes := 0
	for changes < maxChanges-1 && time.Since(start) < b.cfg.Duration {
		<-tick.C
		changes++
		if err := change(changes); err != nil {
			e.add(err)
		}
		ops.Store(recvd.Load())
	}
	tick.Stop()
	elapsed := time.Since(start)
	// Let the last deliveries arrive.
	want := uint64(changes) * uint64(b.cfg.Watchers)
	for end := time.Now().Add(10 * time.Second); recvd.Load() < want && time.Now().Before(end); {
		time.Sleep(10 * time.Millisecond)
	}
	stopProgress()
	stopWatchers()
	wg.Wait()
	b.fill(res, total, elapsed, &e)
	res.Changes = uint64(changes)
	if got := total.Count(); got < want {
		res.Errors += want - got
		if res.FirstError == "" {
			res.FirstError = fmt.Sprintf("%v: %d of %d deliveries", errMissed, got, want)
		}
	}
	return nil
}
