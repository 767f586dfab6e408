package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/muster-registry/muster/api"
	"github.com/muster-registry/muster/client"
)

// changeInterval is the watch scenario's schedule: one change every 100 ms.
const changeInterval = 100 * time.Millisecond

// streamBuffer is each watcher's read buffer: dozens of frames of the
// scenario's events, so a watcher that was not scheduled for a while reads
// what piled up in few calls.
const streamBuffer = 16 << 10

// watch: --watchers SSE streams on one service's instance.join events, and
// a change (a new instance) every 100 ms on schedule, each sent on its own
// goroutine over the changer's own connections, so that a slow answer
// never delays the next change. A delivery's latency runs from just before
// its change's request was sent to when the watcher read the frame; so it
// includes the commit. Res.Changes counts the changes the server
// acknowledged; ChangeP50/P99/MaxMs are their requests' own latencies.
func (b *bench) watch(ctx context.Context, res *Result) error {
	const svc = "watched"
	res.Watchers, res.Concurrency = b.cfg.Watchers, 1
	// The changer's own client (the SDK's default) and connections: the
	// streams hold theirs.
	changer, err := client.New(b.cfg.Addr, client.WithUserAgent("muster-bench"))
	if err != nil {
		return err
	}
	defer changer.CloseIdleConnections()
	// The service exists and has an index to follow from.
	if _, err := changer.PutInstance(ctx, b.cfg.Namespace, svc, "prime", api.RegisterInstanceRequest{Address: "10.0.0.1", Port: 1, HeartbeatTimeout: maxTimeout}); err != nil {
		return err
	}
	_, idx, err := changer.ListInstances(ctx, b.cfg.Namespace, svc, client.InstanceListOptions{})
	if err != nil {
		return err
	}
	planned := max(int(b.cfg.Duration/changeInterval), 1)
	w := newWatchRun(b.cfg.Watchers, planned)
	streamURL, err := eventsURL(b.cfg.Addr, url.Values{
		"namespace": {b.cfg.Namespace}, "service": {svc}, "type": {api.EventInstanceJoin},
		"after": {strconv.FormatUint(uint64(idx), 10)},
	})
	if err != nil {
		return err
	}
	// The streams keep net/http: they read raw frames, not the SDK's
	// decoded events, and a stream's connection is never reused, so the
	// SDK's pooling transport (unexported) would bring them nothing.
	wtr := &http.Transport{
		DialContext:        (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		DisableCompression: true,
		DisableKeepAlives:  true, // a stream's connection is never reused
	}
	defer wtr.CloseIdleConnections()
	wctx, stopWatchers := context.WithCancel(ctx)
	defer stopWatchers()
	var e errs
	var wg sync.WaitGroup
	t0 := time.Now()
	for i := range b.cfg.Watchers {
		wg.Go(func() {
			err := w.follow(wctx, wtr, streamURL, i)
			if err != nil && wctx.Err() == nil {
				e.add(err)
			}
		})
	}
	change := func(seq int) error {
		w.sent[seq].Store(time.Now().UnixNano())
		_, err := changer.PutInstance(ctx, b.cfg.Namespace, svc, fmt.Sprintf("c-%d", seq), api.RegisterInstanceRequest{Address: "10.0.0.2", Port: 1, HeartbeatTimeout: maxTimeout})
		return err
	}
	// Change 0 tells when every stream is open: each follows from idx.
	if err := change(0); err != nil {
		return err
	}
	deadline := time.Now().Add(60*time.Second + time.Duration(b.cfg.Watchers)*time.Millisecond)
	for w.ready.Load() < int64(b.cfg.Watchers) {
		if time.Now().After(deadline) || e.n.Load() > 0 {
			stopWatchers()
			wg.Wait()
			return fmt.Errorf("bench: only %d of %d watchers connected (%d errors, first: %s)", w.ready.Load(), b.cfg.Watchers, e.n.Load(), e.first)
		}
		time.Sleep(10 * time.Millisecond)
	}
	res.PrepareS = time.Since(t0).Seconds()

	stopProgress := b.progress(&w.recvd, &e)
	elapsed, acks := w.changes(planned, change, &e)
	// Let the last deliveries arrive.
	want := uint64(w.acked()) * uint64(b.cfg.Watchers)
	for end := time.Now().Add(10 * time.Second); w.recvd.Load() < want && time.Now().Before(end); {
		time.Sleep(10 * time.Millisecond)
	}
	stopProgress()
	stopWatchers()
	wg.Wait()
	total := w.histogram()
	b.fill(res, total, elapsed, &e)
	res.Changes = uint64(w.acked())
	res.ChangeP50Ms, res.ChangeP99Ms, res.ChangeMaxMs = acks.Quantile(0.5), acks.Quantile(0.99), acks.Max()
	if got := total.Count(); got < want {
		res.Errors += want - got
		if res.FirstError == "" {
			res.FirstError = fmt.Sprintf("%v: %d of %d deliveries", errMissed, got, want)
		}
	}
	return nil
}

// eventsURL is GET /v1/events on the server at addr (as client.New takes it).
func eventsURL(addr string, q url.Values) (string, error) {
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil {
		return "", fmt.Errorf("bench: address %q: %w", addr, err)
	}
	u.Path = strings.TrimRight(u.Path, "/") + "/v1/events"
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// watchRun is the shared state of one watch run.
//
// Concurrency: sent is written by the changer before each change's request
// and read by the watchers; each watcher writes only its own row of lat.
type watchRun struct {
	watchers, planned int
	// sent[seq] is when change seq's request was sent (unix ns); seq 0 is
	// the change that tells the streams are open.
	sent []atomic.Int64
	// lat[w*(planned+1)+seq] is watcher w's latency of change seq in
	// microseconds, plus one (0: not received).
	lat   []uint32
	ok    []atomic.Bool // ok[seq]: the server acknowledged change seq
	ready atomic.Int64  // watchers that have seen change 0
	recvd atomic.Uint64 // deliveries of changes 1..planned
}

func newWatchRun(watchers, planned int) *watchRun {
	return &watchRun{
		watchers: watchers, planned: planned,
		sent: make([]atomic.Int64, planned+1),
		lat:  make([]uint32, watchers*(planned+1)),
		ok:   make([]atomic.Bool, planned+1),
	}
}

// changes makes changes 1..planned, change k at start + (k-1)*interval,
// each on its own goroutine; it answers how long the schedule took, up to
// the last answer, and the histogram of the changes' own latencies.
func (w *watchRun) changes(planned int, change func(int) error, e *errs) (time.Duration, *Histogram) {
	acks := new(Histogram)
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for k := 1; k <= planned; k++ {
		time.Sleep(time.Until(start.Add(time.Duration(k-1) * changeInterval)))
		wg.Go(func() {
			t := time.Now()
			if err := change(k); err != nil {
				e.add(err)
				return
			}
			w.ok[k].Store(true)
			mu.Lock()
			acks.Record(time.Since(t))
			mu.Unlock()
		})
	}
	wg.Wait()
	return time.Since(start), acks
}

// acked is how many changes the server acknowledged.
func (w *watchRun) acked() int {
	n := 0
	for k := 1; k <= w.planned; k++ {
		if w.ok[k].Load() {
			n++
		}
	}
	return n
}

// histogram merges every delivery of an acknowledged change.
func (w *watchRun) histogram() *Histogram {
	h := new(Histogram)
	for i := range w.watchers {
		row := w.lat[i*(w.planned+1) : (i+1)*(w.planned+1)]
		for seq := 1; seq <= w.planned; seq++ {
			if row[seq] != 0 && w.ok[seq].Load() {
				h.Record(time.Duration(row[seq]-1) * time.Microsecond)
			}
		}
	}
	return h
}

// follow opens watcher i's stream and records each change it delivers
// until ctx ends or the stream fails.
func (w *watchRun) follow(ctx context.Context, tr http.RoundTripper, streamURL string, i int) error {
	resp, err := openStream(ctx, tr, streamURL)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	row := w.lat[i*(w.planned+1) : (i+1)*(w.planned+1)]
	seen0 := false
	return readChanges(bufio.NewReaderSize(resp.Body, streamBuffer), func(seq int, at time.Time) error {
		if seq > w.planned {
			return nil
		}
		if seq == 0 {
			if !seen0 {
				seen0 = true
				w.ready.Add(1)
			}
			return nil
		}
		if row[seq] != 0 {
			return fmt.Errorf("bench: change %d delivered twice to one stream", seq)
		}
		us := at.Sub(time.Unix(0, w.sent[seq].Load())) / time.Microsecond
		row[seq] = uint32(min(max(us, 0), 1<<31)) + 1
		w.recvd.Add(1)
		return nil
	})
}

var (
	dataField  = []byte("data: ")
	errorEvent = []byte("event: error\n")
	changeID   = []byte(`"id":"c-`)
)

// readChanges reads an event stream of the watch scenario and calls fn
// with the sequence number of each change (an instance whose id is c-N)
// and when its frame was read. It finds the instance id in the data line
// without decoding the JSON: the event's own "id" is a number, so the only
// string "id" is the payload's. It returns fn's error, the stream's error
// event as an error, or the read error that ended it.
func readChanges(br *bufio.Reader, fn func(seq int, at time.Time) error) error {
	isError := false
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				return fmt.Errorf("bench: a stream line is longer than %d bytes", br.Size())
			}
			return err
		}
		switch {
		case len(line) == 1: // the blank line ending a frame
			isError = false
		case bytes.Equal(line, errorEvent):
			isError = true
		case bytes.HasPrefix(line, dataField):
			if isError {
				return fmt.Errorf("bench: the stream ended with an error: %s", bytes.TrimSpace(line[len(dataField):]))
			}
			if seq, ok := changeSeq(line); ok {
				if err := fn(seq, time.Now()); err != nil {
					return err
				}
			}
		}
	}
}

// changeSeq finds N in the first "id":"c-N" of line.
func changeSeq(line []byte) (int, bool) {
	i := bytes.Index(line, changeID)
	if i < 0 {
		return 0, false
	}
	rest := line[i+len(changeID):]
	end := bytes.IndexByte(rest, '"')
	if end <= 0 {
		return 0, false
	}
	n, err := strconv.Atoi(string(rest[:end]))
	return n, err == nil && n >= 0
}

// openStream opens the event stream at streamURL through tr, raw (the
// scenarios read its frames themselves); an answer other than 200 is an
// error, with the start of its body.
func openStream(ctx context.Context, tr http.RoundTripper, streamURL string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, streamURL, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("User-Agent", "muster-bench")
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return nil, fmt.Errorf("bench: opening an event stream: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		_ = resp.Body.Close()
		return nil, fmt.Errorf("bench: the event stream answered %s: %s", resp.Status, b)
	}
	return resp, nil
}
