package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/muster-registry/muster/api"
)

// timeoutBuffer is the expiry watcher's read buffer: a wave arrives as
// thousands of frames of ~250 bytes, read a few hundred at a time.
const timeoutBuffer = 64 << 10

func newStreamReader(r io.Reader) *bufio.Reader { return bufio.NewReaderSize(r, timeoutBuffer) }

var eventField = []byte("event: ")

// readTimeouts reads an event stream and calls fn with the instance id
// (valid only during the call) and the deadline of each instance.timeout
// event, and the time its data line was read. Other events and comments
// are skipped. It returns fn's error, the stream's error event as an
// error, or the read error that ended it.
//
// A wave is a hundred thousand events, read on the same cores as the
// server's work, so the common shape of the data line is read by hand
// (readTimeoutFast); anything else is decoded with encoding/json.
func readTimeouts(br *bufio.Reader, fn func(id []byte, deadline, at time.Time) error) error {
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
		case bytes.HasPrefix(line, eventField):
			isError = bytes.Equal(line, errorEvent)
		case bytes.HasPrefix(line, dataField):
			at := time.Now()
			data := line[len(dataField) : len(line)-1]
			if isError {
				return fmt.Errorf("bench: the stream ended with an error: %s", bytes.TrimSpace(data))
			}
			id, deadline, ok, err := readTimeout(data)
			if err != nil {
				return err
			}
			if ok {
				if err := fn(id, deadline, at); err != nil {
					return err
				}
			}
		}
	}
}

// readTimeout answers the payload's id and deadline of the event whose
// JSON is data, and ok false when it is not an instance.timeout.
func readTimeout(data []byte) (id []byte, deadline time.Time, ok bool, err error) {
	if id, dl, fast := readTimeoutFast(data); fast {
		if err := deadline.UnmarshalText(dl); err == nil {
			return id, deadline, true, nil
		}
	}
	var ev api.Event
	if err := json.Unmarshal(data, &ev); err != nil {
		return nil, time.Time{}, false, fmt.Errorf("bench: decoding an event: %w", err)
	}
	if ev.Type != api.EventInstanceTimeout {
		return nil, time.Time{}, false, nil
	}
	var p api.InstanceRemovedPayload
	if err := json.Unmarshal(ev.Payload, &p); err != nil {
		return nil, time.Time{}, false, fmt.Errorf("bench: decoding a timeout's payload: %w", err)
	}
	return []byte(p.ID), p.Deadline, true, nil
}

// readTimeoutFast reads the JSON of an instance.timeout event in the exact
// form the server writes it,
//
//	{"id":N,"type":"instance.timeout","namespace":"…","service":"…","time":"…",
//	"payload":{"id":"…","revision_tag":"…","deadline":"…"}}
//
// with every string printable ASCII without escapes, and answers the
// payload's id and the deadline's text. ok is false for anything else.
func readTimeoutFast(data []byte) (id, deadline []byte, ok bool) {
	s := jsonScan{b: data, ok: true}
	s.lit(`{"id":`)
	s.digits()
	s.lit(`,"type":"instance.timeout","namespace":"`)
	s.str()
	s.lit(`","service":"`)
	s.str()
	s.lit(`","time":"`)
	s.str()
	s.lit(`","payload":{"id":"`)
	id = s.str()
	s.lit(`","revision_tag":"`)
	s.str()
	s.lit(`","deadline":"`)
	deadline = s.str()
	s.lit(`"}}`)
	return id, deadline, s.ok && len(s.b) == 0
}

// jsonScan reads expected pieces of JSON off b; ok turns false at the first
// piece that is not there, and stays false.
type jsonScan struct {
	b  []byte
	ok bool
}

func (s *jsonScan) lit(want string) {
	if !s.ok || !bytes.HasPrefix(s.b, []byte(want)) {
		s.fail()
		return
	}
	s.b = s.b[len(want):]
}

func (s *jsonScan) fail() { s.ok, s.b = false, nil }

// digits reads an unsigned integer without leading zeros.
func (s *jsonScan) digits() {
	n := 0
	for n < len(s.b) && s.b[n] >= '0' && s.b[n] <= '9' {
		n++
	}
	if !s.ok || n == 0 || (n > 1 && s.b[0] == '0') {
		s.fail()
		return
	}
	s.b = s.b[n:]
}

// str reads the inside of a string up to its closing quote (left in b),
// which must be printable ASCII without escapes.
func (s *jsonScan) str() []byte {
	for i, c := range s.b {
		switch {
		case c == '"':
			v := s.b[:i]
			s.b = s.b[i:]
			return v
		case c < 0x20 || c >= 0x7f || c == '\\':
			s.fail()
			return nil
		}
	}
	s.fail()
	return nil
}
