package client

import (
	"context"
	"errors"
	"time"

	"github.com/muster-registry/muster/api"
)

// follower is the loop that Watcher and Resolver share: read the whole state
// once (sync), then follow the events feed from the index of that read with
// long polls, handing each answer to apply. After a failure it waits a capped
// exponential backoff and polls again from the last answer applied, so it
// misses nothing; when the events it needs were compacted away (410) it reads
// the whole state again.
//
// sync and apply are called on run's goroutine, one at a time.
type follower struct {
	c *Client
	// query selects the events (Namespace, Service, Types) and the long
	// poll's Wait; run sets After.
	query  EventQuery
	bo     backoff
	report func(error)
	// sync reads the whole state, makes it current and answers the index
	// it reflects.
	sync func(ctx context.Context) (Index, error)
	// apply applies one answer of the feed and answers the id to continue
	// after. On an error run waits a backoff and polls again from after, so
	// the same events come again.
	apply func(ctx context.Context, list api.EventList, after uint64) (uint64, error)
}

// followDefaults fills in the zero values of the options every follower
// takes: the long poll's wait and the backoff's bounds.
func followDefaults(wait, minBackoff, maxBackoff time.Duration) (time.Duration, time.Duration, time.Duration) {
	if wait <= 0 {
		wait = DefaultWatchWait
	}
	wait = min(wait, api.MaxWaitSeconds*time.Second)
	if minBackoff <= 0 {
		minBackoff = DefaultMinBackoff
	}
	if maxBackoff < minBackoff {
		maxBackoff = max(DefaultMaxBackoff, minBackoff)
	}
	return wait, minBackoff, maxBackoff
}

// run follows until ctx is done and then returns ctx's error.
func (f *follower) run(ctx context.Context) error {
	var after uint64
	synced := false
	compacted := false // a 410 came since the last answered poll
	for ctx.Err() == nil {
		if !synced {
			idx, err := f.sync(ctx)
			if err != nil {
				f.fail(ctx, err)
				continue
			}
			after, synced = uint64(idx), true
			continue
		}
		q := f.query
		q.After = after
		list, err := f.c.Events(ctx, q)
		switch {
		case errors.Is(err, ErrEventsCompacted):
			synced = false
			f.report(err)
			// Sync at once; but a feed that stays compacted right after a
			// sync (an index the server cannot follow) must not loop hot.
			if compacted {
				sleep(ctx, f.bo.next())
			}
			compacted = true
		case err != nil:
			f.fail(ctx, err)
		default:
			compacted = false
			next, err := f.apply(ctx, list, after)
			if err != nil {
				f.fail(ctx, err)
				continue
			}
			f.bo.reset()
			after = next
		}
	}
	return ctx.Err()
}

// fail reports err and waits a backoff, unless ctx is done.
func (f *follower) fail(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return
	}
	f.report(err)
	sleep(ctx, f.bo.next())
}
