package bench

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
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

// expiryGrace is how long the others keep heartbeating past the dying
// instances' timeout when not every expiry has been seen by then.
const expiryGrace = 60 * time.Second

// expiry: --instances instances are renewed together once, then stop; the
// lateness of each instance.timeout event (arrival at a watcher minus the
// deadline it carries) is the result, while the workers heartbeat --others
// other instances, each once a second, and measure that: over the whole
// run, and over the wave alone (heartbeats sent from the first deadline to
// the last arrival).
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
	streamURL, err := eventsURL(b.cfg.Addr, url.Values{
		"namespace": {b.cfg.Namespace}, "service": {"expiry"}, "type": {api.EventInstanceTimeout},
		"after": {strconv.FormatUint(uint64(idx), 10)},
	})
	if err != nil {
		return err
	}

	w := newExpiryWatch(dying)
	var (
		e            errs
		streamFailed error
		streamDone   = make(chan struct{}) // closed when the stream has ended
	)
	// The stream keeps net/http's transport, as the watch scenario's do:
	// it reads raw frames, and its connection is never reused.
	tr := &http.Transport{
		DialContext:        (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		DisableCompression: true,
		DisableKeepAlives:  true,
	}
	defer tr.CloseIdleConnections()
	wctx, stopWatcher := context.WithCancel(ctx)
	defer stopWatcher()
	// The stream follows from idx, so it misses no event even if it connects
	// late; the deadlines are seconds away, so it is connected in time for
	// the lateness to be the server's.
	go func() {
		defer close(streamDone)
		if err := w.follow(wctx, tr, streamURL); err != nil && wctx.Err() == nil {
			streamFailed = err
		}
	}()
	// Renew all together so the deadlines fall within the time of one pass.
	if err := b.renewAll(ctx, dying); err != nil {
		return err
	}
	res.PrepareS = time.Since(t0).Seconds()

	// Heartbeat the others until every expiry has arrived (and a second
	// more), the stream has ended (no more expiries can be seen), or
	// expiryGrace past the deadlines.
	hctx, stopBeats := context.WithTimeout(ctx, time.Duration(expiryTimeout(n))*time.Second+expiryGrace)
	defer stopBeats()
	go func() {
		select {
		case <-w.allExpired:
			select {
			case <-time.After(time.Second): // a last second of heartbeats after the wave
			case <-streamDone:
			case <-hctx.Done():
			}
		case <-streamDone:
		case <-hctx.Done():
		}
		stopBeats()
	}()
	var he errs
	start := time.Now()
	hb, beats := b.pacedBeats(hctx, alive, b.cfg.Concurrency, time.Second, &he)
	elapsed := time.Since(start)
	stopBeats()
	stopWatcher()
	<-streamDone

	b.fill(res, w.late, elapsed, &e)
	res.Expired = uint64(w.seen.Load())
	if !w.firstDL.IsZero() {
		res.ExpiredWithinS = w.lastArrival.Sub(w.firstDL).Seconds()
		res.OpsPerS = float64(res.Expired) / max(res.ExpiredWithinS, 1e-3)
		wave := beats.within(start, w.firstDL, w.lastArrival)
		res.WaveHeartbeatOps = wave.Count()
		res.WaveHeartbeatP50Ms, res.WaveHeartbeatP99Ms, res.WaveHeartbeatMaxMs = wave.Quantile(0.5), wave.Quantile(0.99), wave.Max()
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

// expiryWatch is the watcher side of an expiry run.
//
// Concurrency: record runs on the stream's goroutine; the other fields
// but seen and allExpired are read once that goroutine has ended.
type expiryWatch struct {
	// index numbers the dying instances by id; only they count: another
	// registration of the same service (a run aborted earlier in this
	// namespace) may time out too.
	index       map[string]int
	got         []bool
	late        *Histogram
	firstDL     time.Time
	lastArrival time.Time
	seen        atomic.Int64
	allExpired  chan struct{} // closed when every dying instance was seen
}

func newExpiryWatch(dying []member) *expiryWatch {
	w := &expiryWatch{index: make(map[string]int, len(dying)), got: make([]bool, len(dying)),
		late: new(Histogram), allExpired: make(chan struct{})}
	for i, m := range dying {
		w.index[m.id] = i
	}
	if len(dying) == 0 {
		close(w.allExpired)
	}
	return w
}

// follow reads the stream at streamURL until ctx ends or the stream fails.
func (w *expiryWatch) follow(ctx context.Context, tr http.RoundTripper, streamURL string) error {
	resp, err := openStream(ctx, tr, streamURL)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	return readTimeouts(newStreamReader(resp.Body), w.record)
}

// record counts one timeout event that arrived at `at`.
func (w *expiryWatch) record(id []byte, deadline, at time.Time) error {
	i, ok := w.index[string(id)]
	if !ok || w.got[i] {
		return nil
	}
	w.got[i] = true
	w.late.Record(at.Sub(deadline))
	if w.firstDL.IsZero() || deadline.Before(w.firstDL) {
		w.firstDL = deadline
	}
	w.lastArrival = at
	if w.seen.Add(1) == int64(len(w.got)) {
		close(w.allExpired)
	}
	return nil
}

// beatSample is one heartbeat of pacedBeats: when it was sent and how long
// it took, in microseconds, the former counted from the start of the run.
type beatSample struct{ at, took uint32 }

// beatLog is every worker's samples.
type beatLog [][]beatSample

// within is the histogram of the heartbeats sent from `from` to `to`,
// inclusive, of a run that started at start.
func (l beatLog) within(start, from, to time.Time) *Histogram {
	lo, hi := from.Sub(start).Microseconds(), to.Sub(start).Microseconds()
	h := new(Histogram)
	for _, samples := range l {
		for _, s := range samples {
			if at := int64(s.at); at >= lo && at <= hi {
				h.Record(time.Duration(s.took) * time.Microsecond)
			}
		}
	}
	return h
}

// pacedBeats heartbeats members until ctx ends, each once per every, spread
// evenly over workers goroutines, and records the latency of each heartbeat
// (not the wait before it): the histogram of all, and every sample with the
// time it was sent. A worker behind its schedule sends its next heartbeat
// at once.
func (b *bench) pacedBeats(ctx context.Context, members []member, workers int, every time.Duration, e *errs) (*Histogram, beatLog) {
	workers = max(min(workers, len(members)), 1)
	hists := make([]*Histogram, workers)
	log := make(beatLog, workers)
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
					took := time.Since(t0)
					h.Record(took)
					log[w] = append(log[w], beatSample{at: uint32(t0.Sub(start).Microseconds()), took: uint32(min(took.Microseconds(), 1<<32-1))})
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
	return total, log
}
