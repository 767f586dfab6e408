package bench

import (
	"context"
	"fmt"
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
		l, _, err := b.c.ListInstances(ctx, b.cfg.Namespace, svcs[(w+i)%len(svcs)], client.InstanceListOptions{Limit: api.MaxListLimit})
		if err == nil && len(l.Values) < want {
			err = fmt.Errorf("bench: listed %d instances, want %d", len(l.Values), want)
		}
		return err
	})
	b.fill(res, h, el, &e)
	return nil
}
