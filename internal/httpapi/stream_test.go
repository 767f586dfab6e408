package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/muster-registry/muster/api"
	"github.com/muster-registry/muster/internal/fanout"
	"github.com/muster-registry/muster/internal/lease"
	"github.com/muster-registry/muster/internal/state"
)

// streamServer serves a handler over a store that keeps retain events.
func streamServer(t *testing.T, retain int) (*httptest.Server, *state.Store) {
	t.Helper()
	leases, err := lease.New(lease.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st := state.New(retain, leases)
	srv := httptest.NewServer(New(Config{Store: st, Leases: leases}))
	t.Cleanup(srv.Close)
	return srv, st
}

// revisions appends n revision.register events (and the revision.default
// events they cause) to acme/web, each carrying about size bytes of metadata.
func revisions(t *testing.T, st *state.Store, from, n, size int) {
	t.Helper()
	md := map[string]string{}
	for i := 0; size > 0; i++ {
		md[fmt.Sprintf("k%d", i)] = strings.Repeat("x", min(size, 1000))
		size -= 1000
	}
	for i := from; i < from+n; i++ {
		if _, _, err := st.RegisterRevision(time.Now(), state.Key{Namespace: "acme", Name: "web"}, fmt.Sprintf("1.0.%d", i), nil, md); err != nil {
			t.Fatal(err)
		}
	}
}

// openStream starts an SSE request; the caller reads resp.Body.
func openStream(ctx context.Context, t *testing.T, url string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("stream answered %s", resp.Status)
	}
	t.Cleanup(func() { _ = resp.Body.Close() })
	return resp
}

// readFrames reads n frames ("field: value" lines up to a blank line,
// keep-alive comments skipped), each with its final blank line.
func readFrames(br *bufio.Reader, n int) ([][]byte, error) {
	var out [][]byte
	var frame []byte
	for len(out) < n {
		line, err := br.ReadBytes('\n')
		if err != nil {
			return out, err
		}
		if bytes.HasPrefix(line, []byte(":")) {
			continue
		}
		frame = append(frame, line...)
		if len(line) == 1 {
			out = append(out, frame)
			frame = nil
		}
	}
	return out, nil
}

// wantFrames checks that got is every event of the store after `after`
// selected by f, in order, byte for byte as the store framed them.
func wantFrames(t *testing.T, st *state.Store, after uint64, f state.EventFilter, got [][]byte) {
	t.Helper()
	want, _, err := st.EncodedEvents(after, f, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("got %d frames, want %d", len(got), len(want))
	}
	for i, e := range want {
		if !bytes.Equal(got[i], e.Frame) {
			t.Fatalf("frame %d:\n got %q\nwant %q", i, got[i], e.Frame)
		}
	}
}

// Many streams of one filter all receive every event it selects, in
// order, with the documented frames, while the writes go on.
func TestManyStreamsReceiveEveryEventInOrder(t *testing.T) {
	srv, st := streamServer(t, 0)
	revisions(t, st, 0, 3, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const streams = 50
	f := state.EventFilter{Namespace: "acme", Types: []string{api.EventRevisionRegister}}
	bodies := make([]*bufio.Reader, streams)
	for i := range bodies {
		resp := openStream(ctx, t, srv.URL+"/v1/events?namespace=acme&type=revision.register&after=1")
		bodies[i] = bufio.NewReader(resp.Body)
	}
	revisions(t, st, 3, 200, 0)
	want, _, _ := st.EncodedEvents(1, f, 1<<20)
	var wg sync.WaitGroup
	got := make([][][]byte, streams)
	errs := make([]error, streams)
	for i, br := range bodies {
		wg.Go(func() { got[i], errs[i] = readFrames(br, len(want)) })
	}
	wg.Wait()
	for i := range got {
		if errs[i] != nil {
			t.Fatalf("stream %d: %v", i, errs[i])
		}
		wantFrames(t, st, 1, f, got[i])
	}
}

// rawStream opens an SSE request on a connection that nobody reads until
// the test says so.
func rawStream(t *testing.T, srv *httptest.Server, query string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	if _, err := fmt.Fprintf(conn, "GET /v1/events%s HTTP/1.1\r\nHost: muster\r\nAccept: text/event-stream\r\n\r\n", query); err != nil {
		t.Fatal(err)
	}
	return conn
}

// A stream that does not read holds up neither the writes nor the other
// streams; when it reads again it gets every event in order, from the
// store, where the fan-out stopped keeping them for it.
func TestSlowStreamHoldsUpNobody(t *testing.T) {
	srv, st := streamServer(t, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	slow := rawStream(t, srv, "")
	fast := bufio.NewReader(openStream(ctx, t, srv.URL+"/v1/events").Body)
	// ~40 MB of events: far more than the sockets of the slow stream
	// buffer, and more frames than the fan-out keeps for it.
	const n, size = 2500, 8000
	var got [][]byte
	for i := 0; i < n; i += 100 {
		revisions(t, st, i, 100, size)
		more, err := readFrames(fast, int(st.Index())-len(got))
		if err != nil {
			t.Fatalf("fast stream: %v", err)
		}
		got = append(got, more...)
	}
	wantFrames(t, st, 0, state.EventFilter{}, got)

	// Not resp.Body.Close: it would read the endless stream; the
	// connection is closed at cleanup.
	resp, err := http.ReadResponse(bufio.NewReader(slow), nil)
	if err != nil {
		t.Fatal(err)
	}
	slowGot, err := readFrames(bufio.NewReader(resp.Body), int(st.Index()))
	if err != nil {
		t.Fatalf("slow stream: %v", err)
	}
	wantFrames(t, st, 0, state.EventFilter{}, slowGot)
}

// A stream that falls out of the retained window while it does not read
// gets one "error" frame, events_compacted, and the stream ends.
func TestSlowStreamOutOfTheWindowGetsAnErrorEvent(t *testing.T) {
	srv, st := streamServer(t, 100)
	revisions(t, st, 0, 1, 0)
	slow := rawStream(t, srv, "?after=1")
	// The stream must have started (after=1 is held) before it falls behind.
	br := bufio.NewReader(slow)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("stream answered %s", resp.Status)
	}
	revisions(t, st, 1, fanout.MaxPending+2500, 8000) // more than the fan-out keeps, past the socket buffers
	body, err := io.ReadAll(resp.Body)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("reading the stream: %v", err)
	}
	frames := strings.Split(strings.TrimSuffix(string(body), "\n\n"), "\n\n")
	last := frames[len(frames)-1]
	if !strings.HasPrefix(last, "event: error\ndata: {\"error\":\"Events compacted.\",\"type\":\"events_compacted\"") {
		t.Fatalf("the stream ended with %.300q, want an events_compacted error event", last)
	}
	for i, fr := range frames[:len(frames)-1] {
		if fr == ": ping" {
			continue // a keep-alive, on a slow machine (the writes take a while under -race)
		}
		if !strings.HasPrefix(fr, "id: ") {
			t.Fatalf("frame %d is %.100q", i, fr)
		}
	}
}

// A burst larger than the fan-out keeps and than one read of the store (an
// expiry batch commits thousands of events in one write) reaches a stream
// whole and in order, whatever its limit.
func TestStreamReceivesABurstWhole(t *testing.T) {
	srv, st := streamServer(t, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const n = burstRead + 2000
	var items []state.Expiry
	for i := range n {
		inst := &state.Instance{Namespace: "acme", Service: "web", ID: fmt.Sprintf("i-%05d", i), HeartbeatTimeout: 30, RegIndex: uint64(i + 1)}
		if _, err := st.RegisterInstance(time.Now(), inst, false); err != nil {
			t.Fatal(err)
		}
		items = append(items, state.Expiry{Key: inst.Key(), RegIndex: inst.RegIndex, Deadline: time.Now().UTC().Truncate(time.Millisecond)})
	}
	after := st.Index()
	br := bufio.NewReader(openStream(ctx, t, fmt.Sprintf("%s/v1/events?type=instance.timeout&limit=7&after=%d", srv.URL, after)).Body)
	if got := st.ExpireInstances(time.Now(), items); got != n {
		t.Fatalf("expired %d of %d", got, n)
	}
	got, err := readFrames(br, n)
	if err != nil {
		t.Fatal(err)
	}
	wantFrames(t, st, after, state.EventFilter{Types: []string{api.EventInstanceTimeout}}, got)
}
