package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/muster-registry/muster/api"
	"github.com/muster-registry/muster/client"
)

// expiryTimeout is the heartbeat timeout of the expiring instances: long
// enough that all of them are registered before the first one expires.
func expiryTimeout(n int) int {
	return min(max(api.MinHeartbeatTimeout+n/1000, api.MinHeartbeatTimeout), api.MaxHeartbeatTimeout)
}

// expiry: --instances instances are renewed together once, then stop; the
// lateness of each instance.timeout event (arrival at a watcher minus the
// deadline it carries) is the result, while the workers heartbeat --others
// other instances, each once a second, and measure that.
func (b *bench) expiry(ctx context.Context, res *Result) error {
	n := b.cfg.Instances
	res.Instances, res.Others = n, b.cfg.Others
	t0 := time.Now()
	// The others first: the dying instances' timeout allows only for
	// registering and renewing them.
	alive, err := b.prepare(ctx, []string{"alive"}, b.cfg.Others, maxTimeout)
	if err != nil {
		return err
	}
	dying, err := b.prepare(ctx, []string{"expiry"}, n, expiryTimeout(n))
	if err != nil {
		return err
	}
	_, idx, err := b.c.ListInstances(ctx, b.cfg.Namespace, "expiry", client.InstanceListOptions{Limit: 1})
	if err != nil {
		return err
	}

	var (
		e            errs
		late         = new(Histogram)
		seen         atomic.Int64
		firstDL      time.Time
		lastArrival  time.Time
		allExpired   = make(chan struct{})
		wg           sync.WaitGroup
		streamFailed error
	)
	// Only this run's instances count: another registration of the same
	// service (a run aborted earlier in this namespace) may time out too.
	pending := make(map[string]bool, n)
	for _, m := range dying {
		pending[m.id] = true
	}
	wctx, stopWatcher := context.WithCancel(ctx)
	defer stopWatcher()
	// The stream follows from idx, so it misses no event even if it connects
	// late; the deadlines are seconds away, so it is connected in time for
	// the lateness to be the server's.
	wg.Go(func() {
		err := b.c.StreamEvents(wctx, client.EventQuery{Namespace: b.cfg.Namespace, Service: "expiry", After: uint64(idx), Types: []string{api.EventInstanceTimeout}},
			func(ev api.Event) error {
				now := time.Now()
				var p api.InstanceRemovedPayload
				if err := json.Unmarshal(ev.Payload, &p); err != nil {
					return err
				}
				if !pending[p.ID] {
					return nil
				}
				delete(pending, p.ID)
				late.Record(now.Sub(p.Deadline))
				if firstDL.IsZero() || p.Deadline.Before(firstDL) {
					firstDL = p.Deadline
				}
				lastArrival = now
				if seen.Add(1) == int64(n) {
					close(allExpired)
				}
				return nil
			})
		if err != nil && wctx.Err() == nil {
			streamFailed = err
		}
	})
	// Renew all together so the deadlines fall within the time of one pass.
	if err := b.renewAll(ctx, dying); err != nil {
		return err
	}
	res.PrepareS = time.Since(t0).Seconds()

	// Heartbeat the others until every expiry has arrived (or a minute past
	// the deadlines).
	hctx, stopBeats := context.WithTimeout(ctx, time.Duration(expiryTimeout(n))*time.Second+60*time.Second)
	go func() {
		select {
		case <-allExpired:
			// A last second of heartbeats after the wave.
			time.Sleep(time.Second)
		case <-hctx.Done():
		}
		stopBeats()
	}()
	var he errs
	start := time.Now()
	hb := b.pacedBeats(hctx, alive, b.cfg.Concurrency, time.Second, &he)
	elapsed := time.Since(start)
	stopBeats()
	stopWatcher()
	wg.Wait()

	b.fill(res, late, elapsed, &e)
	res.Expired = uint64(seen.Load())
	if !firstDL.IsZero() {
		res.ExpiredWithinS = lastArrival.Sub(firstDL).Seconds()
		res.OpsPerS = float64(res.Expired) / max(res.ExpiredWithinS, 1e-3)
	}
	res.HeartbeatOps, res.HeartbeatErrors = hb.Count(), he.n.Load()
	res.HeartbeatP50Ms, res.HeartbeatP99Ms, res.HeartbeatMaxMs = hb.Quantile(0.5), hb.Quantile(0.99), hb.Max()
	res.Errors += res.HeartbeatErrors + uint64(n) - min(res.Expired, uint64(n))
	switch {
	case streamFailed != nil:
		res.FirstError = streamFailed.Error()
	case res.Expired < uint64(n):
		res.FirstError = fmt.Sprintf("bench: %d of %d instances seen to expire", res.Expired, n)
	case he.first != "":
		res.FirstError = he.first
	}
	return nil
}

// batch: workers renew --instances instances with POST /v1/heartbeats,
// each worker cycling over its own share in batches of up to batchSize.
func (b *bench) batch(ctx context.Context, res *Result) error {
	t0 := time.Now()
	members, err := b.prepare(ctx, services("batch", 10), b.cfg.Instances, maxTimeout)
	if err != nil {
		return err
	}
	res.PrepareS, res.Instances = time.Since(t0).Seconds(), b.cfg.Instances
	per := (len(members) + b.cfg.Concurrency - 1) / b.cfg.Concurrency
	// Only as many workers as there are non-empty shares: an idle worker
	// would spin and steal a core from the server.
	n := (len(members) + per - 1) / per
	res.Concurrency = n
	size := min(per, batchSize)
	res.BatchSize = size
	var renewed atomic.Uint64
	var e errs
	scratch := make([][]api.BatchHeartbeat, n) // each worker's request buffer
	h, el := b.loop(ctx, n, b.cfg.Duration, &e, func(ctx context.Context, w, i int) error {
		share := members[w*per : min((w+1)*per, len(members))]
		chunks := (len(share) + size - 1) / size
		c := i % chunks
		k, err := b.renewBatch(ctx, share[c*size:min((c+1)*size, len(share))], &scratch[w])
		renewed.Add(uint64(k))
		return err
	})
	b.fill(res, h, el, &e)
	res.RenewalsPerS = float64(renewed.Load()) / el.Seconds()
	return nil
}

// mixed: a blend over --instances instances in 10 services: 70 % single
// heartbeats, 25 % lookups of a service, 5 % registrations and
// deregistrations (churn).
func (b *bench) mixed(ctx context.Context, res *Result) error {
	t0 := time.Now()
	svcs := services("mixed", 10)
	members, err := b.prepare(ctx, svcs, b.cfg.Instances, maxTimeout)
	if err != nil {
		return err
	}
	res.PrepareS, res.Instances = time.Since(t0).Seconds(), b.cfg.Instances
	res.Mix = "70% heartbeat, 25% lookup, 5% register+deregister"
	n := min(b.cfg.Concurrency, len(members))
	res.Concurrency = n
	own := owned(members, n)
	churn := make([]string, n) // a worker's registered churn instance, if any
	var e errs
	h, el := b.loop(ctx, n, b.cfg.Duration, &e, func(ctx context.Context, w, i int) error {
		r := rand.IntN(100)
		switch {
		case r < 70:
			m := &members[own[w][i%len(own[w])]]
			hb, err := b.c.Heartbeat(ctx, b.cfg.Namespace, m.svc, m.id, m.token)
			if err == nil {
				m.token = hb.Token
			}
			return err
		case r < 95:
			_, _, err := b.c.ListInstances(ctx, b.cfg.Namespace, svcs[r%len(svcs)], client.InstanceListOptions{})
			return err
		case churn[w] == "":
			id := fmt.Sprintf("churn-%d-%d", w, i)
			_, err := b.c.PutInstance(ctx, b.cfg.Namespace, "churn", id, api.RegisterInstanceRequest{Address: "10.0.0.3", Port: 1, HeartbeatTimeout: maxTimeout})
			if err == nil {
				churn[w] = id
			}
			return err
		default:
			err := b.c.DeregisterInstance(ctx, b.cfg.Namespace, "churn", churn[w])
			churn[w] = ""
			return err
		}
	})
	b.fill(res, h, el, &e)
	return nil
}

// pacedBeats heartbeats members until ctx ends, each once per every, spread
// evenly over workers goroutines, and records the latency of each heartbeat
// (not the wait before it). A worker behind its schedule sends its next
// heartbeat at once.
func (b *bench) pacedBeats(ctx context.Context, members []member, workers int, every time.Duration, e *errs) *Histogram {
	workers = max(min(workers, len(members)), 1)
	hists := make([]*Histogram, workers)
	var ops atomic.Uint64
	stopProgress := b.progress(&ops, e)
	defer stopProgress()
	start := time.Now()
	var wg sync.WaitGroup
	for w := range workers {
		h := new(Histogram)
		hists[w] = h
		wg.Go(func() {
			var mine []*member // members w, w+workers, ...
			for i := w; i < len(members); i += workers {
				mine = append(mine, &members[i])
			}
			if len(mine) == 0 {
				return
			}
			gap := every / time.Duration(len(mine))
			next := start.Add(every * time.Duration(w) / time.Duration(len(members)))
			t := time.NewTimer(0)
			defer t.Stop()
			for i := 0; ; i++ {
				if d := time.Until(next); d > 0 {
					t.Reset(d)
					select {
					case <-ctx.Done():
						return
					case <-t.C:
					}
				}
				if ctx.Err() != nil {
					return
				}
				m := mine[i%len(mine)]
				t0 := time.Now()
				r, err := b.c.Heartbeat(ctx, b.cfg.Namespace, m.svc, m.id, m.token)
				switch {
				case ctx.Err() != nil && err != nil:
					return // cut short by the end of the run: not an error
				case err != nil:
					e.add(err)
				default:
					m.token = r.Token
					h.Record(time.Since(t0))
					ops.Add(1)
				}
				next = next.Add(gap)
			}
		})
	}
	wg.Wait()
	total := new(Histogram)
	for _, h := range hists {
		total.Merge(h)
	}
	return total
}
