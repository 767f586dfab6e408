package state

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/muster-registry/muster/api"
)

// stdJSON is what encoding/json writes for v with HTML escaping off,
// without the newline.
func stdJSON(t testing.TB, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// TestEncodingMatchesEncodingJSON holds the hand-written encoders of
// instance payloads, removal payloads and event lines to encoding/json's
// bytes, for any strings (escapes, non-ASCII, invalid UTF-8), nil and empty
// lists, metadata and times in any zone.
func TestEncodingMatchesEncodingJSON(t *testing.T) {
	str := rapid.OneOf(rapid.String(), rapid.StringMatching(`[a-z0-9.<>&-]{0,8}`), rapid.SampledFrom([]string{"", "\x00", "\xff", "\u2028", `"\`}))
	when := rapid.Custom(func(t *rapid.T) time.Time {
		tm := time.Unix(rapid.Int64Range(-1e10, 2.5e11).Draw(t, "sec"), rapid.Int64Range(0, 999_999_999).Draw(t, "nsec"))
		if off := rapid.IntRange(-50_000, 50_000).Draw(t, "off"); off != 0 {
			return tm.In(time.FixedZone("z", off))
		}
		return tm.UTC()
	})
	list := rapid.Custom(func(t *rapid.T) []string {
		if rapid.Bool().Draw(t, "nil") {
			return nil
		}
		return rapid.SliceOfN(str, 0, 3).Draw(t, "list")
	})
	rapid.Check(t, func(rt *rapid.T) {
		p := instancePayload{view: api.Instance{
			Namespace: str.Draw(rt, "ns"), Service: str.Draw(rt, "svc"), ID: str.Draw(rt, "id"),
			RevisionTag: str.Draw(rt, "rev"), Address: str.Draw(rt, "addr"), Port: rapid.IntRange(-1<<31, 1<<31).Draw(rt, "port"),
			PublicURL: str.Draw(rt, "url"), Endpoints: list.Draw(rt, "endpoints"), Tags: list.Draw(rt, "tags"),
			HeartbeatTimeout: rapid.IntRange(0, 120).Draw(rt, "timeout"), Status: str.Draw(rt, "status"),
			RegisteredAt: when.Draw(rt, "reg"), LastHeartbeatAt: when.Draw(rt, "beat"), ExpiresAt: when.Draw(rt, "exp"),
		}, md: MetadataOf(rapid.MapOfN(str, str, 0, 4).Draw(rt, "md"))}
		got, ok := appendPayloadJSON(nil, p)
		if want := stdJSON(t, p.wire()); !ok || !bytes.Equal(got, want) {
			rt.Fatalf("instance: ok %v\n got %s\nwant %s", ok, got, want)
		}

		r := api.InstanceRemovedPayload{ID: str.Draw(rt, "rid"), RevisionTag: str.Draw(rt, "rrev")}
		if rapid.Bool().Draw(rt, "deadline") {
			r.Deadline = when.Draw(rt, "deadline")
		}
		got, ok = appendPayloadJSON(nil, r)
		if want := stdJSON(t, r); !ok || !bytes.Equal(got, want) {
			rt.Fatalf("removed: ok %v\n got %s\nwant %s", ok, got, want)
		}

		e := api.Event{ID: rapid.Uint64().Draw(rt, "eid"), Type: str.Draw(rt, "type"), Namespace: str.Draw(rt, "ens"),
			Service: str.Draw(rt, "esvc"), Time: when.Draw(rt, "time"), Payload: got}
		if rapid.Bool().Draw(rt, "nil payload") {
			e.Payload = nil
		}
		if b, want := encodeEvent(&e), stdJSON(t, &e); !bytes.Equal(b, want) {
			rt.Fatalf("event:\n got %s\nwant %s", b, want)
		}
		// The frame push writes in one piece is the frame of that line.
		frame, ok := appendEventFrame(nil, &e)
		if want := sseFrame(&e, stdJSON(t, &e)); !ok || !bytes.Equal(frame, want) {
			rt.Fatalf("frame: ok %v\n got %q\nwant %q", ok, frame, want)
		}
	})
}

// A time encoding/json refuses makes the hand-written encoders give up, so
// that emit and encodeEvent answer as encoding/json does.
func TestEncodingRefusesBadTime(t *testing.T) {
	bad := time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, ok := appendPayloadJSON(nil, instancePayload{view: api.Instance{ExpiresAt: bad}}); ok {
		t.Fatal("instance with year 10000 encoded")
	}
	if _, ok := appendPayloadJSON(nil, api.InstanceRemovedPayload{Deadline: bad}); ok {
		t.Fatal("removal with year 10000 encoded")
	}
	if _, ok := appendEventJSON(nil, &api.Event{Time: bad}); ok {
		t.Fatal("event with year 10000 encoded")
	}
	if _, ok := appendEventFrame(nil, &api.Event{Time: bad}); ok {
		t.Fatal("frame with year 10000 encoded")
	}
	if _, ok := appendPayloadJSON(nil, api.RevisionDefaultPayload{}); ok {
		t.Fatal("a payload without a hand-written encoder was encoded by hand")
	}
}
