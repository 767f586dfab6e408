package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/muster-registry/muster/api"
	"github.com/muster-registry/muster/client"
)

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
