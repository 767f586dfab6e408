package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// writeEventMix writes a known mix of events in two namespaces and returns
// the events the server recorded.
//
//	1 revision.register a/x   2 revision.default a/x   3 instance.join a/y
//	4 revision.register b/x   5 revision.default b/x   6 instance.join b/x
//	7 instance.update a/y     8 instance.remove b/x    9 revision.register a/x
func writeEventMix(t *testing.T, s *server) []event {
	t.Helper()
	s.postRevision(t, "a", "x", map[string]string{"revision_tag": "1.0.0"})
	s.register(t, "a", "y", map[string]any{"id": "y1"})
	s.postRevision(t, "b", "x", map[string]string{"revision_tag": "1.0.0"})
	s.register(t, "b", "x", map[string]any{"id": "x1"})
	s.do(t, "PATCH", instPath("a", "y", "y1"), map[string]any{"tags": []string{"t"}}).want(t, http.StatusOK)
	s.do(t, "DELETE", instPath("b", "x", "x1"), nil).want(t, http.StatusNoContent)
	s.postRevision(t, "a", "x", map[string]string{"revision_tag": "0.9.0"})
	r := s.do(t, "GET", "/events?after=0", nil).want(t, http.StatusOK)
	list := decode[eventList](t, r)
	want := []string{"revision.register", "revision.default", "instance.join", "revision.register", "revision.default",
		"instance.join", "instance.update", "instance.remove", "revision.register"}
	var types []string
	for i, e := range list.Events {
		types = append(types, e.Type)
		if e.ID != uint64(i+1) {
			t.Errorf("event %d has id %d; ids must be contiguous from 1", i, e.ID)
		}
		if e.Time.IsZero() || len(e.Payload) == 0 {
			t.Errorf("event %d lacks time or payload: %+v", e.ID, e)
		}
	}
	if !slices.Equal(types, want) {
		t.Fatalf("event types %v\nwant        %v", types, want)
	}
	if list.Next != 9 || r.index(t) != 9 {
		t.Errorf("next %d, X-Muster-Index %d; want 9, 9", list.Next, r.index(t))
	}
	return list.Events
}

// TestEventsPoll checks the feed's filters, limit/after paging, next, and
// X-Muster-Index on every list and read.
func TestEventsPoll(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOpts{Dev: true})
	all := writeEventMix(t, s)

	tests := []struct {
		query    string
		wantIDs  []uint64
		wantNext uint64
	}{
		{"after=0", []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9}, 9},
		{"", []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9}, 9},
		{"after=5", []uint64{6, 7, 8, 9}, 9},
		{"after=9", []uint64{}, 9},
		{"type=revision.register", []uint64{1, 4, 9}, 9},
		{"type=instance.join&type=instance.remove", []uint64{3, 6, 8}, 9},
		{"namespace=b", []uint64{4, 5, 6, 8}, 9},
		{"namespace=a&service=x", []uint64{1, 2, 9}, 9},
		{"service=x", []uint64{1, 2, 4, 5, 6, 8, 9}, 9},
		{"namespace=a&type=instance.update", []uint64{7}, 9},
		{"namespace=zzz", []uint64{}, 9},
		// limit: next is the last id returned when the page is full, else the newest.
		{"limit=2", []uint64{1, 2}, 2},
		{"limit=2&after=2", []uint64{3, 4}, 4},
		{"limit=2&after=8", []uint64{9}, 9},
		{"limit=2&namespace=b", []uint64{4, 5}, 5},
		{"limit=2&namespace=b&after=5", []uint64{6, 8}, 8},
		{"limit=2&namespace=b&after=8", []uint64{}, 9},
		{"limit=3&type=revision.default", []uint64{2, 5}, 9},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			r := s.do(t, "GET", "/events?"+tt.query, nil).want(t, http.StatusOK)
			if r.index(t) != 9 {
				t.Errorf("X-Muster-Index %d, want 9", r.index(t))
			}
			list := decode[eventList](t, r)
			got := []uint64{}
			for _, e := range list.Events {
				got = append(got, e.ID)
			}
			if !slices.Equal(got, tt.wantIDs) || list.Next != tt.wantNext {
				t.Errorf("ids %v next %d; want %v next %d", got, list.Next, tt.wantIDs, tt.wantNext)
			}
			if list.Events == nil {
				t.Errorf("events is null, want a list")
			}
			for _, e := range list.Events {
				if !eventEqual(e, all[e.ID-1]) {
					t.Errorf("event %d differs between reads:\n%+v\n%+v", e.ID, e, all[e.ID-1])
				}
			}
		})
	}

	// Following next with a small limit visits every event exactly once.
	var walked []uint64
	after := uint64(0)
	for range 10 {
		list := s.events(t, "limit=4&after="+strconv.FormatUint(after, 10))
		for _, e := range list.Events {
			walked = append(walked, e.ID)
		}
		if list.Next == after {
			break
		}
		after = list.Next
	}
	if !slices.Equal(walked, []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9}) {
		t.Errorf("walking with next visited %v", walked)
	}

	// after beyond the newest event is a client error, not a wait forever.
	s.do(t, "GET", "/events?after=10", nil).wantError(t, http.StatusBadRequest, "bad_request", "newer")

	// Every list and every read a watcher would follow carries the index.
	reads := []string{
		svcPath("a", "x"), svcPath("a", "x") + "?revision_tag=0.9.0", svcPath("a", "x") + "/revisions",
		svcPath("a", "y") + "/instances", instPath("a", "y", "y1"), "/services", "/services?namespace=a",
		"/url-map/a", "/events", "/status",
		svcPath("a", "nope"), instPath("a", "y", "nope"), // reads that find nothing, too
	}
	for _, p := range reads {
		if got := s.do(t, "GET", p, nil).index(t); got != 9 {
			t.Errorf("GET %s: X-Muster-Index %d, want 9", p, got)
		}
	}
	// A write moves the index by the events it wrote, and says so.
	r := s.postRevision(t, "a", "x", map[string]string{"revision_tag": "2.0.0"}) // register + default
	if got := r.index(t); got != 11 {
		t.Errorf("write answered X-Muster-Index %d, want 11", got)
	}
	if got := s.do(t, "GET", svcPath("a", "x"), nil).index(t); got != 11 {
		t.Errorf("read after write: X-Muster-Index %d, want 11", got)
	}
}

func eventEqual(a, b event) bool {
	return a.ID == b.ID && a.Type == b.Type && a.Namespace == b.Namespace && a.Service == b.Service &&
		a.Time.Equal(b.Time) && string(a.Payload) == string(b.Payload)
}

// TestEventsLongPoll checks wait: a long-poll returns as soon as a matching
// event is written, ignores events its filter excludes, and answers an empty
// list when the wait ends with nothing new.
func TestEventsLongPoll(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOpts{Dev: true})
	s.postRevision(t, "lp", "svc", map[string]string{"revision_tag": "1.0.0"}) // events 1, 2

	t.Run("returns when an event is written", func(t *testing.T) {
		done := make(chan reply, 1)
		fail := make(chan error, 1)
		start := time.Now()
		go func() {
			r, err := send("GET", s.URL+"/events?after=2&wait=5&type=instance.join", nil)
			if err != nil {
				fail <- err
				return
			}
			done <- r
		}()
		// Written while the poll waits: first an event the filter excludes,
		// then the one it wants.
		writes := time.AfterFunc(300*time.Millisecond, func() {
			_, _ = send("POST", s.URL+svcPath("lp", "svc"), map[string]string{"revision_tag": "0.1.0"}) // event 3
			_, _ = send("POST", s.URL+svcPath("lp", "svc")+"/instances", map[string]string{"id": "i1"}) // event 4
		})
		defer writes.Stop()
		var r reply
		select {
		case r = <-done:
		case err := <-fail:
			t.Fatal(err)
		case <-time.After(10 * time.Second):
			t.Fatal("long-poll did not return")
		}
		elapsed := time.Since(start)
		list := decode[eventList](t, r.want(t, http.StatusOK))
		if len(list.Events) != 1 || list.Events[0].ID != 4 || list.Events[0].Type != "instance.join" {
			t.Fatalf("long-poll answered %s; want only event 4 (instance.join)", r.Body)
		}
		if list.Next != 4 || r.index(t) != 4 {
			t.Errorf("next %d, index %d; want 4", list.Next, r.index(t))
		}
		if elapsed >= 4*time.Second {
			t.Errorf("long-poll took %v; it should return promptly after the write, not at the end of wait=5", elapsed)
		}
	})

	t.Run("empty after the wait", func(t *testing.T) {
		idx := s.status(t).EventIndex
		start := time.Now()
		r := s.do(t, "GET", "/events?wait=1&after="+strconv.FormatUint(idx, 10), nil).want(t, http.StatusOK)
		elapsed := time.Since(start)
		list := decode[eventList](t, r)
		if len(list.Events) != 0 || list.Events == nil || list.Next != idx {
			t.Errorf("answered %s; want {\"events\":[],\"next\":%d}", r.Body, idx)
		}
		if elapsed < 900*time.Millisecond || elapsed > 4*time.Second {
			t.Errorf("wait=1 answered after %v; want about 1 s", elapsed)
		}
	})

	t.Run("no wait answers at once", func(t *testing.T) {
		idx := s.status(t).EventIndex
		start := time.Now()
		list := s.events(t, "after="+strconv.FormatUint(idx, 10))
		if len(list.Events) != 0 || time.Since(start) > 2*time.Second {
			t.Errorf("poll without wait: %+v after %v", list, time.Since(start))
		}
	})
}

// sseEvent is one Server-Sent Event.
type sseEvent struct {
	ID, Event, Data string
}

// openSSE opens an event stream and parses it in the background; the channel
// closes when the stream ends. The stream closes when the test ends.
func openSSE(t *testing.T, s *server, query string, hdr ...string) (*http.Response, <-chan sseEvent, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, "GET", s.URL+"/events?"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := (&http.Client{}).Do(req) // no client timeout: the stream is long-lived
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan sseEvent, 64)
	go func() {
		defer close(ch)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		var cur sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if cur != (sseEvent{}) {
					ch <- cur
				}
				cur = sseEvent{}
			case strings.HasPrefix(line, ":"): // comment (keep-alive)
			case strings.HasPrefix(line, "id: "):
				cur.ID = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "event: "):
				cur.Event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				cur.Data += strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	return resp, ch, cancel
}

// nextSSE returns the next event of the stream, checking that id: and
// event: agree with the JSON in data:.
func nextSSE(t *testing.T, ch <-chan sseEvent) event {
	t.Helper()
	select {
	case se, ok := <-ch:
		if !ok {
			t.Fatal("event stream ended")
		}
		var e event
		if err := json.Unmarshal([]byte(se.Data), &e); err != nil {
			t.Fatalf("SSE data %q: %v", se.Data, err)
		}
		if se.ID != strconv.FormatUint(e.ID, 10) || se.Event != e.Type {
			t.Errorf("SSE id:%q event:%q disagree with data %s", se.ID, se.Event, se.Data)
		}
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("no SSE event within 10 s")
		return event{}
	}
}

func wantSSEIDs(t *testing.T, ch <-chan sseEvent, want ...uint64) {
	t.Helper()
	for _, id := range want {
		if e := nextSSE(t, ch); e.ID != id {
			t.Fatalf("SSE event %d (%s), want %d", e.ID, e.Type, id)
		}
	}
}

// TestEventsSSE follows the feed as Server-Sent Events, then reconnects with
// Last-Event-ID and gets exactly the events after it.
func TestEventsSSE(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOpts{Dev: true})
	s.postRevision(t, "sse", "svc", map[string]string{"revision_tag": "1.0.0"}) // 1, 2
	s.register(t, "sse", "svc", map[string]any{"id": "i1"})                     // 3

	resp, ch, cancel := openSSE(t, s, "after=0")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("SSE answered %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if resp.Header.Get("X-Muster-Index") != "3" {
		t.Errorf("SSE X-Muster-Index %q, want 3", resp.Header.Get("X-Muster-Index"))
	}
	wantSSEIDs(t, ch, 1, 2, 3)
	s.postRevision(t, "sse", "svc", map[string]string{"revision_tag": "2.0.0"}) // 4, 5
	wantSSEIDs(t, ch, 4, 5)
	cancel()

	// Reconnect as a browser would: Last-Event-ID takes the place of after.
	_, ch, _ = openSSE(t, s, "after=0", "Last-Event-ID", "2")
	wantSSEIDs(t, ch, 3, 4, 5)
	// Exactly those: the next event on the stream is the next one written.
	s.postRevision(t, "sse", "svc", map[string]string{"revision_tag": "0.1.0"}) // 6
	wantSSEIDs(t, ch, 6)

	// A filtered stream skips what the filter excludes.
	_, ch, _ = openSSE(t, s, "type=revision.default&after=0")
	wantSSEIDs(t, ch, 2, 5)
	s.do(t, "DELETE", svcPath("sse", "svc")+"/revisions/2.0.0", nil).want(t, http.StatusNoContent) // 7 remove, 8 default
	wantSSEIDs(t, ch, 8)

	// A bad Last-Event-ID is refused before the stream starts.
	r := doURL(t, "GET", s.URL+"/events", nil, "Accept", "text/event-stream", "Last-Event-ID", "x")
	r.wantError(t, http.StatusBadRequest, "bad_request", "Last-Event-ID")
}

// TestEventsCompacted keeps only 5 events, writes 20, and checks that a
// follower that fell behind gets 410 events_compacted naming the oldest id,
// while a first read (after=0) and a follower inside the window do not.
func TestEventsCompacted(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOpts{Dev: true, RetainEvents: 5})
	for i := 1; i <= 10; i++ { // each a new greatest version: register + default
		s.postRevision(t, "gc", "svc", map[string]string{"revision_tag": fmt.Sprintf("%d.0.0", i)})
	}
	st := s.status(t)
	if st.EventIndex != 20 || st.OldestEvent != 16 {
		t.Fatalf("status: event_index %d oldest_event %d; want 20 and 16", st.EventIndex, st.OldestEvent)
	}
	for _, after := range []string{"1", "10", "14"} {
		r := s.do(t, "GET", "/events?after="+after, nil)
		r.wantError(t, http.StatusGone, "events_compacted", "oldest held is 16")
		if r.index(t) != 20 {
			t.Errorf("410 X-Muster-Index %d, want 20 (where to follow from)", r.index(t))
		}
		// Long-polls and streams are refused the same way.
		s.do(t, "GET", "/events?wait=5&after="+after, nil).wantError(t, http.StatusGone, "events_compacted", "16")
		doURL(t, "GET", s.URL+"/events?after="+after, nil, "Accept", "text/event-stream").
			wantError(t, http.StatusGone, "events_compacted", "16")
		doURL(t, "GET", s.URL+"/events", nil, "Accept", "text/event-stream", "Last-Event-ID", after).
			wantError(t, http.StatusGone, "events_compacted", "16")
	}
	for _, c := range []struct {
		after string
		want  []uint64
	}{
		{"0", []uint64{16, 17, 18, 19, 20}}, // a first read starts at the oldest held
		{"15", []uint64{16, 17, 18, 19, 20}},
		{"18", []uint64{19, 20}},
	} {
		var got []uint64
		for _, e := range s.events(t, "after="+c.after).Events {
			got = append(got, e.ID)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("after=%s: %v, want %v", c.after, got, c.want)
		}
	}
	// The state itself is whole: only the feed is trimmed.
	if n := len(s.revisions(t, "gc", "svc")); n != 10 {
		t.Errorf("%d revisions, want 10", n)
	}
}
