// Package bench is the load generator behind `muster bench`: scenarios that
// drive a running server through the Go SDK and measure throughput and
// latency (an HDR-like histogram, see Histogram).
//
// A scenario first prepares its data (registers instances, opens streams),
// which is not measured, then runs closed-loop workers for Config.Duration.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/muster-registry/muster/api"
	"github.com/muster-registry/muster/client"
)

// Scenarios returns the names Run accepts, in the order the docs list them.
func Scenarios() []string {
	return []string{"register", "heartbeat", "lookup", "watch", "expiry", "batch", "mixed"}
}

// Config is one benchmark run.
type Config struct {
	// Addr is the server's base address, such as http://127.0.0.1:7410.
	Addr     string
	Scenario string
	// Concurrency is the number of closed-loop workers (default 64).
	Concurrency int
	// Duration is how long the measured phase lasts (default 10 s); the
	// expiry scenario ends when every instance has expired instead.
	Duration time.Duration
	// Instances is how many instances heartbeat, lookup, expiry, batch and
	// mixed prepare (default 1000).
	Instances int
	// Watchers is how many event streams the watch scenario opens (default 100).
	Watchers int
	// Others is how many other instances the expiry scenario keeps
	// heartbeating, each once a second, while its wave expires (default
	// 10,000).
	Others int
	// Namespace holds everything the run creates (default "bench"); use a
	// fresh one per run against a shared server.
	Namespace string
	// Progress, when set, receives a progress line about once a second
	// (rewritten in place with \r).
	Progress io.Writer
}

func (c *Config) defaults() {
	if c.Concurrency <= 0 {
		c.Concurrency = 64
	}
	if c.Duration <= 0 {
		c.Duration = 10 * time.Second
	}
	if c.Instances <= 0 {
		c.Instances = 1000
	}
	if c.Watchers <= 0 {
		c.Watchers = 100
	}
	if c.Others <= 0 {
		c.Others = 10_000
	}
	if c.Namespace == "" {
		c.Namespace = "bench"
	}
}

// Result is what a run measured. Latencies are in milliseconds; the
// scenario-specific fields are zero where they do not apply.
type Result struct {
	Scenario    string  `json:"scenario"`
	Concurrency int     `json:"concurrency"`
	Instances   int     `json:"instances,omitempty"`
	Watchers    int     `json:"watchers,omitempty"`
	Others      int     `json:"others,omitempty"` // expiry: other instances heartbeating meanwhile
	DurationS   float64 `json:"duration_s"`
	Ops         uint64  `json:"ops"`
	OpsPerS     float64 `json:"ops_per_s"`
	MeanMs      float64 `json:"mean_ms"`
	P50Ms       float64 `json:"p50_ms"`
	P90Ms       float64 `json:"p90_ms"`
	P99Ms       float64 `json:"p99_ms"`
	MaxMs       float64 `json:"max_ms"`
	Errors      uint64  `json:"errors"`
	// FirstError describes one error, to say what went wrong.
	FirstError string `json:"first_error,omitempty"`

	// watch: changes made (acknowledged by the server); every watcher
	// should see each one. The percentiles above are of the deliveries;
	// these are of the changes' own requests, sent to acknowledged.
	Changes     uint64  `json:"changes,omitempty"`
	ChangeP50Ms float64 `json:"change_p50_ms,omitempty"`
	ChangeP99Ms float64 `json:"change_p99_ms,omitempty"`
	ChangeMaxMs float64 `json:"change_max_ms,omitempty"`
	// expiry: instances that timed out, from the first deadline to the last
	// timeout event; and the heartbeats of other instances meanwhile.
	Expired         uint64  `json:"expired,omitempty"`
	ExpiredWithinS  float64 `json:"expired_within_s,omitempty"`
	HeartbeatOps    uint64  `json:"heartbeat_ops,omitempty"`
	HeartbeatP50Ms  float64 `json:"heartbeat_p50_ms,omitempty"`
	HeartbeatP99Ms  float64 `json:"heartbeat_p99_ms,omitempty"`
	HeartbeatMaxMs  float64 `json:"heartbeat_max_ms,omitempty"`
	HeartbeatErrors uint64  `json:"heartbeat_errors,omitempty"`
	// expiry: the heartbeats of other instances sent during the wave alone,
	// from the first deadline to the last timeout event's arrival.
	WaveHeartbeatOps   uint64  `json:"wave_heartbeat_ops,omitempty"`
	WaveHeartbeatP50Ms float64 `json:"wave_heartbeat_p50_ms,omitempty"`
	WaveHeartbeatP99Ms float64 `json:"wave_heartbeat_p99_ms,omitempty"`
	WaveHeartbeatMaxMs float64 `json:"wave_heartbeat_max_ms,omitempty"`
	RenewalsPerS       float64 `json:"renewals_per_s,omitempty"`
	BatchSize          int     `json:"batch_size,omitempty"`
	Mix                string  `json:"mix,omitempty"`
	PrepareS           float64 `json:"prepare_s"`
}

// Run runs cfg.Scenario against the server at cfg.Addr.
func Run(ctx context.Context, cfg Config) (Result, error) {
	cfg.defaults()
	if !slices.Contains(Scenarios(), cfg.Scenario) {
		return Result{}, fmt.Errorf("bench: unknown scenario %q (one of %s)", cfg.Scenario, strings.Join(Scenarios(), ", "))
	}
	b := &bench{cfg: cfg}
	// The SDK's default client, so the bench measures what users get: for
	// an http:// address, its own keep-alive transport, which keeps 256 idle
	// connections (beyond --concurrency 256 the extra ones reconnect).
	var err error
	b.c, err = client.New(cfg.Addr, client.WithUserAgent("muster-bench"))
	if err != nil {
		return Result{}, err
	}
	defer b.c.CloseIdleConnections()
	if err := b.c.Health(ctx); err != nil {
		return Result{}, fmt.Errorf("bench: server at %s: %w", cfg.Addr, err)
	}
	res := Result{Scenario: cfg.Scenario, Concurrency: cfg.Concurrency}
	switch cfg.Scenario {
	case "register":
		err = b.register(ctx, &res)
	case "heartbeat":
		err = b.heartbeat(ctx, &res)
	case "lookup":
		err = b.lookup(ctx, &res)
	case "watch":
		err = b.watch(ctx, &res)
	case "expiry":
		err = b.expiry(ctx, &res)
	case "batch":
		err = b.batch(ctx, &res)
	case "mixed":
		err = b.mixed(ctx, &res)
	}
	return res, err
}

type bench struct {
	cfg Config
	c   *client.Client
}

// member is a registered instance and its current token.
type member struct {
	svc, id, token string
}

// errs counts errors and keeps the first.
type errs struct {
	n     atomic.Uint64
	once  sync.Once
	first string
}

func (e *errs) add(err error) {
	e.n.Add(1)
	e.once.Do(func() { e.first = err.Error() })
}

// worker is one closed-loop worker's op: i counts its own calls.
type worker func(ctx context.Context, w, i int) error

// loop runs n workers for d and answers their merged histogram. Only ops
// that return nil are timed; failed ones count as errors.
func (b *bench) loop(ctx context.Context, n int, d time.Duration, e *errs, op worker) (*Histogram, time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	hists := make([]*Histogram, n)
	var ops atomic.Uint64
	stopProgress := b.progress(&ops, e)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range n {
		hists[w] = new(Histogram)
		wg.Go(func() {
			h := hists[w]
			for i := 0; ctx.Err() == nil; i++ {
				t0 := time.Now()
				err := op(ctx, w, i)
				if ctx.Err() != nil && err != nil {
					return // cut short by the end of the run: not an error
				}
				if err != nil {
					e.add(err)
					continue
				}
				h.Record(time.Since(t0))
				ops.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	stopProgress()
	total := new(Histogram)
	for _, h := range hists {
		total.Merge(h)
	}
	return total, elapsed
}

// progress prints the op count and rate once a second until stopped.
func (b *bench) progress(ops *atomic.Uint64, e *errs) (stop func()) {
	if b.cfg.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		start, last := time.Now(), uint64(0)
		for {
			select {
			case <-done:
				fmt.Fprint(b.cfg.Progress, "\r\033[K")
				return
			case <-t.C:
				n := ops.Load()
				fmt.Fprintf(b.cfg.Progress, "\r\033[K%s  %4.0fs  %10d ops  %9.0f ops/s  %d errors",
					b.cfg.Scenario, time.Since(start).Seconds(), n, float64(n-last), e.n.Load())
				last = n
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

func (b *bench) fill(res *Result, h *Histogram, elapsed time.Duration, e *errs) {
	res.DurationS = elapsed.Seconds()
	res.Ops = h.Count()
	if elapsed > 0 {
		res.OpsPerS = float64(h.Count()) / elapsed.Seconds()
	}
	res.MeanMs, res.P50Ms, res.P90Ms, res.P99Ms, res.MaxMs = h.Mean(), h.Quantile(0.5), h.Quantile(0.9), h.Quantile(0.99), h.Max()
	res.Errors = e.n.Load()
	res.FirstError = e.first
}

// prepare registers n instances spread round-robin over the services with
// the given heartbeat timeout, using the configured concurrency; it is not
// measured.
func (b *bench) prepare(ctx context.Context, services []string, n, timeout int) ([]member, error) {
	out := make([]member, n)
	var next atomic.Int64
	var e errs
	var wg sync.WaitGroup
	for range min(b.cfg.Concurrency, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				m := member{svc: services[i%len(services)], id: fmt.Sprintf("i-%07d", i)}
				reg, err := b.c.PutInstance(ctx, b.cfg.Namespace, m.svc, m.id, api.RegisterInstanceRequest{
					Address: "10.0.0.1", Port: 8080 + i%1000, Tags: []string{"bench"}, HeartbeatTimeout: timeout,
				})
				if err != nil {
					e.add(err)
					return
				}
				m.token = reg.Token
				out[i] = m
			}
		})
	}
	wg.Wait()
	if e.n.Load() > 0 {
		return nil, fmt.Errorf("bench: preparing %d instances: %s", n, e.first)
	}
	return out, ctx.Err()
}

// keepAlive renews members in batches every period until ctx ends, so the
// instances of a long read-only run do not expire under it. Tokens are
// updated in place: members must not be heartbeated by anyone else.
func (b *bench) keepAlive(ctx context.Context, members []member, period time.Duration) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = b.renewAll(ctx, members)
		}
	}
}

// batchSize is the most heartbeats the bench sends in one request: well
// within api.MaxBatchHeartbeats (5000) and the route's 1 MiB body limit,
// and large enough that per-request costs are small beside per-beat ones.
const batchSize = 1000

// renewAll heartbeats every member in batches of batchSize.
func (b *bench) renewAll(ctx context.Context, members []member) error {
	for lo := 0; lo < len(members); lo += batchSize {
		chunk := members[lo:min(lo+batchSize, len(members))]
		if _, err := b.renewBatch(ctx, chunk, nil); err != nil {
			return err
		}
	}
	return nil
}

// renewBatch sends one batch and stores the new tokens; it answers how
// many renewed, and an error if any did not. scratch, when not nil, is the
// caller's buffer for the request's heartbeats, reused from call to call.
func (b *bench) renewBatch(ctx context.Context, chunk []member, scratch *[]api.BatchHeartbeat) (int, error) {
	var beats []api.BatchHeartbeat
	if scratch != nil {
		beats = (*scratch)[:0]
	}
	for _, m := range chunk {
		beats = append(beats, api.BatchHeartbeat{Namespace: b.cfg.Namespace, Service: m.svc, ID: m.id, Token: m.token})
	}
	if scratch != nil {
		*scratch = beats
	}
	results, err := b.c.HeartbeatBatch(ctx, beats)
	if err != nil {
		return 0, err
	}
	if len(results) != len(chunk) {
		return 0, fmt.Errorf("bench: %d heartbeats got %d results", len(chunk), len(results))
	}
	ok := 0
	var first error
	for j, r := range results {
		if r.Error != nil {
			if first == nil {
				first = fmt.Errorf("bench: heartbeat of %s: %s (%s)", chunk[j].id, r.Error.Error, r.Error.Type)
			}
			continue
		}
		chunk[j].token = r.Token
		ok++
	}
	return ok, first
}

// errMissed is a change that a watcher did not see.
var errMissed = errors.New("bench: a watcher missed changes")
