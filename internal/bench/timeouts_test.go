package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/muster-registry/muster/api"
)

// timeoutFrame is the SSE frame of ev as the server writes it: encoding/json
// with HTML escaping off (TestEncodingMatchesEncodingJSON in internal/state
// holds the server's hand-written encoder to the same bytes).
func timeoutFrame(t fataler, ev api.Event, p api.InstanceRemovedPayload) string {
	t.Helper()
	var payload bytes.Buffer
	enc := json.NewEncoder(&payload)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(p); err != nil {
		t.Fatal(err)
	}
	ev.Payload = bytes.TrimSuffix(payload.Bytes(), []byte("\n"))
	var line bytes.Buffer
	enc = json.NewEncoder(&line)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(ev); err != nil {
		t.Fatal(err)
	}
	return "id: " + strconv.FormatUint(ev.ID, 10) + "\nevent: " + ev.Type + "\ndata: " + line.String() + "\n"
}

// fataler is what both testing.TB and *rapid.T have.
type fataler interface {
	Helper()
	Fatal(args ...any)
}

type gotTimeout struct {
	id       string
	deadline time.Time
}

func readAll(t fataler, stream string) ([]gotTimeout, error) {
	t.Helper()
	var got []gotTimeout
	// One byte at a time, so frames straddle reads.
	br := bufio.NewReaderSize(io.LimitReader(&oneByte{s: stream}, int64(len(stream))), timeoutBuffer)
	err := readTimeouts(br, func(id []byte, deadline, _ time.Time) error {
		got = append(got, gotTimeout{string(id), deadline})
		return nil
	})
	return got, err
}

func TestReadTimeouts(t *testing.T) {
	dl := time.Date(2026, 11, 23, 7, 8, 9, 123_000_000, time.UTC)
	timeout := func(id uint64, inst string) string {
		return timeoutFrame(t, api.Event{ID: id, Type: api.EventInstanceTimeout, Namespace: "n01", Service: "expiry", Time: dl},
			api.InstanceRemovedPayload{ID: inst, RevisionTag: "v1", Deadline: dl})
	}
	join := "id: 3\nevent: instance.join\ndata: {\"id\":3,\"type\":\"instance.join\",\"namespace\":\"n01\",\"service\":\"expiry\",\"time\":\"2026-11-23T01:02:03.004Z\",\"payload\":{\"id\":\"x\"}}\n\n"
	cases := []struct {
		name    string
		stream  string
		want    []string
		wantErr string
	}{
		{"timeouts", timeout(7, "i-0000001") + timeout(8, "i-0000002"), []string{"i-0000001", "i-0000002"}, ""},
		{"other events and pings are skipped", ": ping\n\n" + join + timeout(4, "i-1") + ": ping\n\n", []string{"i-1"}, ""},
		{"escapes go to encoding/json", timeout(5, `a"b\c`) + timeout(6, "é"), []string{`a"b\c`, "é"}, ""},
		{"an error event ends it", timeout(4, "i-2") + "event: error\ndata: {\"error\":\"Events compacted.\",\"type\":\"events_compacted\"}\n\n" + timeout(5, "i-3"),
			[]string{"i-2"}, `bench: the stream ended with an error: {"error":"Events compacted.","type":"events_compacted"}`},
		{"bad JSON", "event: instance.timeout\ndata: {\"id\":1,\n\n", nil, "bench: decoding an event"},
		{"a line longer than the buffer", timeout(1, "i-1") + "data: " + strings.Repeat("x", timeoutBuffer+10) + "\n\n", []string{"i-1"}, "longer than"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readAll(t, tc.stream)
			var ids []string
			for _, g := range got {
				ids = append(ids, g.id)
				if !g.deadline.Equal(dl) {
					t.Errorf("%s: deadline %s, want %s", g.id, g.deadline, dl)
				}
			}
			if strings.Join(ids, ",") != strings.Join(tc.want, ",") {
				t.Errorf("ids %q, want %q", ids, tc.want)
			}
			if tc.wantErr == "" && err != io.EOF || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("error %v, want %q", err, tc.wantErr)
			}
		})
	}
}

// The server's usual frames take the hand-written path: the test above
// would pass with encoding/json alone.
func TestReadTimeoutFastTakesServerFrames(t *testing.T) {
	dl := time.Date(2026, 11, 23, 7, 8, 9, 123_000_000, time.UTC)
	frame := timeoutFrame(t, api.Event{ID: 120034, Type: api.EventInstanceTimeout, Namespace: "n01", Service: "expiry", Time: dl},
		api.InstanceRemovedPayload{ID: "i-0012345", Deadline: dl})
	data := frame[strings.Index(frame, "data: ")+len("data: ") : len(frame)-2]
	id, deadline, ok := readTimeoutFast([]byte(data))
	if !ok || string(id) != "i-0012345" || string(deadline) != "2026-11-23T07:08:09.123Z" {
		t.Fatalf("readTimeoutFast(%s) = %q, %q, %v", data, id, deadline, ok)
	}
}

// Whatever the event, readTimeouts answers what encoding/json decodes.
func TestReadTimeoutsMatchesEncodingJSON(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		str := rapid.OneOf(rapid.StringMatching(`[a-z0-9-]{0,12}`), rapid.String())
		when := rapid.Custom(func(t *rapid.T) time.Time {
			tm := time.Unix(rapid.Int64Range(-1e10, 1e11).Draw(t, "sec"), rapid.Int64Range(0, 999_999_999).Draw(t, "nsec"))
			if off := rapid.IntRange(-3, 3).Draw(t, "hours"); off != 0 {
				return tm.In(time.FixedZone("", off*3600))
			}
			return tm.UTC()
		})
		typ := rapid.SampledFrom([]string{api.EventInstanceTimeout, api.EventInstanceTimeout, api.EventInstanceRemove}).Draw(t, "type")
		ev := api.Event{ID: rapid.Uint64().Draw(t, "id"), Type: typ, Namespace: str.Draw(t, "ns"), Service: str.Draw(t, "svc"), Time: when.Draw(t, "time")}
		p := api.InstanceRemovedPayload{ID: str.Draw(t, "inst"), RevisionTag: str.Draw(t, "tag")}
		if rapid.Bool().Draw(t, "deadline") {
			p.Deadline = when.Draw(t, "dl")
		}
		frame := timeoutFrame(t, ev, p)
		got, err := readAll(t, frame)
		if err != io.EOF {
			t.Fatalf("%q: %v", frame, err)
		}
		// What the SDK's way, encoding/json, makes of the same bytes.
		var dec api.Event
		data := frame[strings.Index(frame, "data: ")+len("data: ") : len(frame)-2]
		if err := json.Unmarshal([]byte(data), &dec); err != nil {
			t.Fatal(err)
		}
		if dec.Type != api.EventInstanceTimeout {
			if len(got) != 0 {
				t.Fatalf("a %s event was read as a timeout: %+v", dec.Type, got)
			}
			return
		}
		var want api.InstanceRemovedPayload
		if err := json.Unmarshal(dec.Payload, &want); err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].id != want.ID || !got[0].deadline.Equal(want.Deadline) || got[0].deadline.String() != want.Deadline.String() {
			t.Fatalf("%q: read %+v, encoding/json %q %s", frame, got, want.ID, want.Deadline)
		}
	})
}

func BenchmarkReadTimeouts(b *testing.B) {
	dl := time.Date(2026, 11, 23, 7, 8, 9, 123_000_000, time.UTC)
	var stream bytes.Buffer
	const n = 1000
	for i := range n {
		stream.WriteString(timeoutFrame(b, api.Event{ID: uint64(120000 + i), Type: api.EventInstanceTimeout, Namespace: "n01", Service: "expiry", Time: dl},
			api.InstanceRemovedPayload{ID: "i-" + strconv.Itoa(1000000+i), Deadline: dl}))
	}
	b.ReportAllocs()
	for b.Loop() {
		br := bufio.NewReaderSize(bytes.NewReader(stream.Bytes()), timeoutBuffer)
		k := 0
		if err := readTimeouts(br, func([]byte, time.Time, time.Time) error { k++; return nil }); err != io.EOF || k != n {
			b.Fatal(err, k)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/event")
}
