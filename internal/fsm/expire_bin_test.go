package fsm

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/muster-registry/muster/internal/state"
)

func genExpireInstances(t *rapid.T) *ExpireInstances {
	// Few namespaces and services, so that items share them as in a wave.
	name := rapid.OneOf(rapid.SampledFrom([]string{"", "n01", "expiry"}), rapid.String())
	when := rapid.Custom(func(t *rapid.T) time.Time {
		switch rapid.IntRange(0, 5).Draw(t, "kind") {
		case 0:
			return time.Time{}
		case 1: // beyond int64 nanoseconds
			return time.Date(rapid.IntRange(2263, 9999).Draw(t, "year"), 1, 2, 3, 4, 5, 6, time.UTC)
		}
		tm := time.Unix(rapid.Int64Range(-1e10, 9e9).Draw(t, "sec"), rapid.Int64Range(0, 999_999_999).Draw(t, "nsec"))
		if rapid.Bool().Draw(t, "ms") {
			tm = tm.Truncate(time.Millisecond)
		}
		switch rapid.IntRange(0, 3).Draw(t, "zone") {
		case 0:
			return tm.In(time.FixedZone("", rapid.IntRange(-12, 12).Draw(t, "hours")*3600))
		case 1:
			return tm.In(time.FixedZone("UTC", 0))
		}
		return tm.UTC()
	})
	c := &ExpireInstances{Time: when.Draw(t, "time")}
	for range rapid.IntRange(1, 20).Draw(t, "n") {
		c.Items = append(c.Items, state.Expiry{
			Key:      state.InstanceKey{Namespace: name.Draw(t, "ns"), Service: name.Draw(t, "svc"), ID: rapid.String().Draw(t, "id")},
			RegIndex: rapid.Uint64().Draw(t, "reg"), Deadline: when.Draw(t, "deadline"),
		})
	}
	return c
}

// The binary body decodes to exactly what the JSON body of the same
// command decodes to, so replicas that read either agree.
func TestExpireInstancesBinaryMatchesJSON(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		c := genExpireInstances(rt)
		b, err := Encode(c)
		if err != nil {
			rt.Fatal(err)
		}
		if b[0] != byte(TypeExpireInstances) || b[1] != expireBinV1 {
			rt.Fatalf("header % x, want 06 01", b[:2])
		}
		got, err := Decode(b)
		if err != nil {
			rt.Fatal(err)
		}
		body, err := json.Marshal(c)
		if err != nil {
			rt.Fatal(err)
		}
		want, err := Decode(append([]byte{byte(TypeExpireInstances)}, body...))
		if err != nil {
			rt.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			rt.Fatalf("binary decodes to\n%#v\nJSON to\n%#v", got, want)
		}
	})
}

// Every cut of an encoding, and any byte changed in it, is refused or
// decodes; it never panics. A cut one never decodes.
func TestExpireInstancesBinaryRefusesDamage(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		b, err := Encode(genExpireInstances(rt))
		if err != nil {
			rt.Fatal(err)
		}
		refusesDamage(rt, b)
	})
}

// A wave's items, sorted deadlines of one service, take ~20 bytes each
// instead of ~120 as JSON; an empty command stays JSON.
func TestExpireInstancesBinarySize(t *testing.T) {
	dl := time.Date(2026, 11, 23, 7, 0, 0, 0, time.UTC)
	c := &ExpireInstances{Time: dl.Add(time.Second)}
	for i := range 1000 {
		c.Items = append(c.Items, state.Expiry{Key: state.InstanceKey{Namespace: "n01", Service: "expiry", ID: "i-" + string(rune('a'+i%26)) + "00123"},
			RegIndex: uint64(100_000 + i), Deadline: dl.Add(time.Duration(i/10) * time.Millisecond)})
	}
	b, err := Encode(c)
	if err != nil {
		t.Fatal(err)
	}
	if per := len(b) / len(c.Items); per > 20 {
		t.Errorf("%d bytes per item", per)
	}
	empty, err := Encode(&ExpireInstances{Time: dl, Items: []state.Expiry{}})
	if err != nil {
		t.Fatal(err)
	}
	if string(empty[1:]) != `{"time":"2026-11-23T07:00:00Z","items":[]}` {
		t.Errorf("empty command encodes as %q", empty)
	}
}

// A binary body of no items is refused: the encoder writes an empty
// command as JSON, so only damage makes one.
func TestExpireInstancesBinaryRefusesNoItems(t *testing.T) {
	b, err := Encode(&ExpireInstances{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Items: []state.Expiry{{Key: state.InstanceKey{Namespace: "ns", Service: "s", ID: "i"}, RegIndex: 1, Deadline: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}}})
	if err != nil {
		t.Fatal(err)
	}
	// Type, version, the time's length and text, then the count.
	at := 2 + 1 + int(b[2])
	if b[at] != 1 {
		t.Fatalf("count byte at %d is %d, want 1", at, b[at])
	}
	empty := append(append([]byte(nil), b[:at]...), 0)
	if _, err := Decode(empty); err == nil {
		t.Error("a binary body of no items decoded")
	}
}
