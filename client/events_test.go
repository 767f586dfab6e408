package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/muster-registry/muster/api"
)

func TestReadSSE(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  []sseMessage
	}{
		{"one event", "id: 42\nevent: instance.join\ndata: {\"id\":42}\n\n",
			[]sseMessage{{id: "42", event: "instance.join", data: []byte(`{"id":42}`)}}},
		{"keep-alive comments dispatch nothing", ": ping\n\n: ping\n\n", nil},
		{"comments between fields are skipped", "data: a\n: data: b\ndata: c\n\n", []sseMessage{{data: []byte("a\nc")}}},
		{"CRLF and CR line endings", "id: 1\r\ndata: a\r\n\r\nid: 2\rdata: b\r\r",
			[]sseMessage{{id: "1", data: []byte("a")}, {id: "2", data: []byte("b")}}},
		{"CRLF ends one line, not two", "data: a\r\ndata: b\r\n\r\n", []sseMessage{{data: []byte("a\nb")}}},
		{"data lines join with newlines", "data: a\ndata: b\n\n", []sseMessage{{data: []byte("a\nb")}}},
		{"no space after the colon", "id:7\ndata:x\n\n", []sseMessage{{id: "7", data: []byte("x")}}},
		{"only one leading space is dropped", "data:  x\n\n", []sseMessage{{data: []byte(" x")}}},
		{"unknown fields and retry are ignored", "retry: 100\nfoo: bar\ndata: x\n\n", []sseMessage{{data: []byte("x")}}},
		{"the last id carries over; event does not", "id: 5\nevent: e\ndata: a\n\ndata: b\n\n",
			[]sseMessage{{id: "5", event: "e", data: []byte("a")}, {id: "5", data: []byte("b")}}},
		{"an id with NUL is ignored", "id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n",
			[]sseMessage{{id: "1", data: []byte("a")}, {id: "1", data: []byte("b")}}},
		{"a field without a colon has an empty value", "data\n\n", []sseMessage{{data: []byte("")}}},
		{"an event without data is not dispatched", "id: 9\nevent: e\n\n", nil},
		{"an unterminated event at the end is dropped", "data: a\n\ndata: b\n", []sseMessage{{data: []byte("a")}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []sseMessage
			err := readSSE(strings.NewReader(tt.input), func(m sseMessage) error {
				m.data = append([]byte{}, m.data...)
				got = append(got, m)
				return nil
			})
			if !errors.Is(err, ErrStreamClosed) {
				t.Errorf("err = %v, want ErrStreamClosed", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestReadSSERefusesARunawayLine(t *testing.T) {
	long := "data: " + strings.Repeat("x", maxSSELine) + "\n\n"
	err := readSSE(strings.NewReader(long), func(sseMessage) error { return nil })
	if err == nil || errors.Is(err, ErrStreamClosed) || !strings.Contains(err.Error(), "longer") {
		t.Errorf("err = %v, want a line-too-long error", err)
	}
}

// sseServer serves events as the contract says and records the request.
func sseServer(t *testing.T, write func(w http.ResponseWriter, r *http.Request)) *Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(write))
	t.Cleanup(srv.Close)
	c, err := New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func writeSSEEvent(w io.Writer, id uint64, typ, data string) {
	_, _ = fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", id, typ, data)
}

func TestStreamEvents(t *testing.T) {
	var gotReq *http.Request
	c := sseServer(t, func(w http.ResponseWriter, r *http.Request) {
		gotReq = r.Clone(context.Background())
		w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
		_, _ = io.WriteString(w, ": ping\n\n")
		writeSSEEvent(w, 8, api.EventInstanceJoin, `{"id":8,"type":"instance.join","namespace":"acme","service":"web","payload":{"id":"a"}}`)
		writeSSEEvent(w, 9, api.EventInstanceRemove, `{"namespace":"acme","service":"web","payload":{"id":"a"}}`) // id and type from the fields
		_, _ = io.WriteString(w, ": ping\n\n")
	})
	var got []api.Event
	err := c.StreamEvents(t.Context(), EventQuery{Namespace: "acme", Types: []string{"x"}, After: 7, Wait: 30}, func(ev api.Event) error {
		got = append(got, ev)
		return nil
	})
	if !errors.Is(err, ErrStreamClosed) {
		t.Errorf("err = %v, want ErrStreamClosed", err)
	}
	if len(got) != 2 || got[0].ID != 8 || got[0].Type != api.EventInstanceJoin ||
		got[1].ID != 9 || got[1].Type != api.EventInstanceRemove || string(got[1].Payload) != `{"id":"a"}` {
		t.Errorf("events %+v", got)
	}
	if gotReq.Header.Get("Accept") != "text/event-stream" || gotReq.Header.Get("Last-Event-ID") != "7" ||
		gotReq.URL.RawQuery != "after=7&namespace=acme&type=x" {
		t.Errorf("request %v %v: want Accept, Last-Event-ID and after=7 without wait", gotReq.URL, gotReq.Header)
	}
}

func TestStreamEventsEnds(t *testing.T) {
	errMine := errors.New("mine")
	tests := []struct {
		name    string
		write   func(w http.ResponseWriter, r *http.Request)
		fn      func(cancel context.CancelFunc) func(api.Event) error
		wantIs  error
		wantMsg string
		wantN   int // events seen
	}{
		{"fn's error stops it", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			writeSSEEvent(w, 1, "a", `{"id":1}`)
			writeSSEEvent(w, 2, "a", `{"id":2}`)
		}, func(context.CancelFunc) func(api.Event) error {
			return func(api.Event) error { return errMine }
		}, errMine, "", 1},
		{"an error event mid-stream", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			writeSSEEvent(w, 1, "a", `{"id":1}`)
			_, _ = io.WriteString(w, "event: error\ndata: {\"error\":\"Events compacted.\",\"type\":\"events_compacted\",\"details\":\"oldest 9\"}\n\n")
			writeSSEEvent(w, 2, "a", `{"id":2}`)
		}, nil, ErrEventsCompacted, "410 events_compacted: Events compacted. (oldest 9)", 1},
		{"a malformed error event", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, "event: error\ndata: {\"error\n\n")
		}, nil, nil, "decoding error event", 0},
		{"410 compacted", func(w http.ResponseWriter, r *http.Request) {
			writeError(w, http.StatusGone, api.ErrEventsCompacted, "Compacted.")
		}, nil, ErrEventsCompacted, "", 0},
		{"a server that does not stream", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusOK, api.EventList{})
		}, nil, nil, "not text/event-stream", 0},
		{"bad event JSON", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			writeSSEEvent(w, 1, "a", `{"id":`)
		}, nil, nil, "decoding event", 0},
		{"cancelled mid-stream", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			writeSSEEvent(w, 1, "a", `{"id":1}`)
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		}, func(cancel context.CancelFunc) func(api.Event) error {
			return func(api.Event) error { cancel(); return nil }
		}, context.Canceled, "", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := sseServer(t, tt.write)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			n := 0
			var fn func(api.Event) error
			if tt.fn != nil {
				fn = tt.fn(cancel)
			}
			err := c.StreamEvents(ctx, EventQuery{}, func(ev api.Event) error {
				n++
				if fn != nil {
					return fn(ev)
				}
				return nil
			})
			if err == nil || (tt.wantIs != nil && !errors.Is(err, tt.wantIs)) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("err = %v, want %v %q", err, tt.wantIs, tt.wantMsg)
			}
			if n != tt.wantN {
				t.Errorf("%d events seen, want %d", n, tt.wantN)
			}
		})
	}
}
