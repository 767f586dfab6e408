package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/muster-registry/muster/api"
)

// ErrStreamClosed is returned by StreamEvents when the server ends the
// stream. Resume with After set to the id of the last event seen.
var ErrStreamClosed = errors.New("client: event stream closed by the server")

// maxSSELine bounds one line of an event stream; an event is one JSON line
// well under the API's 64 KiB body limit, so this only stops a runaway peer.
const maxSSELine = 1 << 20

// EventQuery selects events of the feed (GET /v1/events). Zero fields do not
// filter.
type EventQuery struct {
	// Namespace and Service: only events of that namespace or service.
	Namespace string
	Service   string
	// Types: only events of these types (sent as repeated ?type=), such as
	// api.EventInstanceJoin.
	Types []string
	// After: only events with a greater id; an Index or an EventList.Next.
	After uint64
	// Limit: at most this many events per answer.
	Limit int
	// Wait: when no event follows After, wait up to this long for one (sent
	// as whole seconds, rounded up; the server allows at most 300). Ignored
	// by StreamEvents.
	Wait time.Duration
}

func (q EventQuery) values(withWait bool) url.Values {
	v := url.Values{}
	setString(v, "namespace", q.Namespace)
	setString(v, "service", q.Service)
	for _, t := range q.Types {
		v.Add("type", t)
	}
	if q.After > 0 {
		v.Set("after", strconv.FormatUint(q.After, 10))
	}
	setInt(v, "limit", q.Limit)
	if withWait && q.Wait > 0 {
		v.Set("wait", strconv.FormatInt(int64(q.waitRounded()/time.Second), 10))
	}
	return v
}

// waitRounded is Wait rounded up to whole seconds, as sent.
func (q EventQuery) waitRounded() time.Duration {
	return (q.Wait + time.Second - 1) / time.Second * time.Second
}

// Events answers the events after q.After (GET /v1/events). With q.Wait set
// it is a long poll: when no event follows After, the server holds the
// request up to Wait and then answers an empty list. Continue with
// After = the answer's Next. An After older than the server's retained window
// gets ErrEventsCompacted: list again and follow from the list's Index.
func (c *Client) Events(ctx context.Context, q EventQuery) (api.EventList, error) {
	var out api.EventList
	_, err := c.do(ctx, request{
		method: http.MethodGet, path: "/events", query: q.values(true), out: &out,
		extra: max(q.waitRounded(), 0),
	})
	return out, err
}

// StreamEvents follows the feed as Server-Sent Events (GET /v1/events with
// Accept: text/event-stream) and calls fn with each event, in order, on the
// calling goroutine. It starts after q.After (sent as ?after= and as
// Last-Event-ID) and ignores q.Wait.
//
// It returns when ctx is done (ctx.Err()), when fn returns an error (that
// error), when the server refuses the request or ends the stream with an
// "error" event (an *APIError, such as ErrEventsCompacted), on a transport
// error, or when the server closes the stream (ErrStreamClosed). It does not reconnect: to resume, call it again
// with After set to the id of the last event fn saw. The stream is bounded by
// ctx only, not by the client's timeout.
func (c *Client) StreamEvents(ctx context.Context, q EventQuery, fn func(api.Event) error) error {
	r := request{method: http.MethodGet, path: "/events", query: q.values(false)}
	if q.After > 0 {
		r.header = http.Header{"Last-Event-Id": {strconv.FormatUint(q.After, 10)}}
	}
	resp, err := c.send(ctx, r, "text/event-stream")
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return readAPIError(resp)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/event-stream" {
		return fmt.Errorf("client: event stream: server answered %q, not text/event-stream", resp.Header.Get("Content-Type"))
	}
	err = readSSE(resp.Body, func(m sseMessage) error {
		if m.event == "error" {
			return streamError(m.data)
		}
		var ev api.Event
		if err := json.Unmarshal(m.data, &ev); err != nil {
			return fmt.Errorf("client: event stream: decoding event %q: %w", m.id, err)
		}
		if ev.ID == 0 {
			ev.ID, _ = strconv.ParseUint(m.id, 10, 64)
		}
		if ev.Type == "" {
			ev.Type = m.event
		}
		return fn(ev)
	})
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// streamError is the *APIError of an "error" event, which the server sends
// in the error shape when it ends a stream that has already answered 200.
// StatusCode is the status the same error gets as an answer.
func streamError(data []byte) error {
	var body api.Error
	if err := json.Unmarshal(data, &body); err != nil {
		return fmt.Errorf("client: event stream: decoding error event: %w", err)
	}
	return &APIError{
		StatusCode: statusOfType(body.Type), Type: body.Type, Message: body.Error,
		Details: body.Details, RequestID: body.RequestID,
	}
}

// sseMessage is one dispatched Server-Sent Event.
type sseMessage struct {
	id    string // the last event id, as the spec carries it across events
	event string
	data  []byte
}

// readSSE parses an event stream as the HTML Server-Sent Events spec says:
// lines end with CRLF, LF or CR; lines starting with ':' are comments
// (keep-alives); a field's value loses one leading space; unknown fields
// and retry are ignored; a blank line dispatches the event when it has data.
// It returns fn's error, a read error, or ErrStreamClosed at the end.
func readSSE(r io.Reader, fn func(sseMessage) error) error {
	br := bufio.NewReader(r)
	var (
		lastID  string
		event   string
		data    bytes.Buffer
		hasData bool
		afterCR bool // the previous line ended with CR: skip an LF that follows
	)
	for {
		line, endCR, err := readSSELine(br, afterCR)
		afterCR = endCR
		if err != nil {
			if errors.Is(err, io.EOF) {
				return ErrStreamClosed // an unterminated event is dropped, per the spec
			}
			return fmt.Errorf("client: event stream: %w", err)
		}
		if len(line) == 0 {
			if hasData {
				msg := sseMessage{id: lastID, event: event, data: bytes.TrimSuffix(data.Bytes(), []byte("\n"))}
				if err := fn(msg); err != nil {
					return err
				}
			}
			event, hasData = "", false
			data.Reset()
			continue
		}
		// A comment (": ping") has the empty field name, unknown like
		// any other: ignored below.
		field, value, _ := strings.Cut(string(line), ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "data":
			data.WriteString(value)
			data.WriteByte('\n')
			hasData = true
		case "event":
			event = value
		case "id":
			if !strings.ContainsRune(value, 0) {
				lastID = value
			}
		}
	}
}

// readSSELine reads one line without its ending and reports whether it
// ended with CR. skipLF drops a leading LF that completes the previous
// line's CRLF.
func readSSELine(br *bufio.Reader, skipLF bool) ([]byte, bool, error) {
	var line []byte
	for {
		b, err := br.ReadByte()
		if err != nil {
			return nil, false, err
		}
		if skipLF {
			skipLF = false
			if b == '\n' {
				continue
			}
		}
		switch b {
		case '\n':
			return line, false, nil
		case '\r':
			return line, true, nil
		}
		if len(line) >= maxSSELine {
			return nil, false, fmt.Errorf("line longer than %d bytes", maxSSELine)
		}
		line = append(line, b)
	}
}
