package fsm

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/muster-registry/muster/internal/state"
)

// decodeJSON is how a RegisterInstance written as JSON (by earlier
// binaries) decodes.
func decodeJSON(t testing.TB, c *RegisterInstance) Command {
	t.Helper()
	body, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(append([]byte{byte(TypeRegisterInstance)}, body...))
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func genRegisterInstance(t *rapid.T) *RegisterInstance {
	str := rapid.OneOf(rapid.String(), rapid.StringMatching(`[a-z0-9-]{0,10}`))
	list := rapid.Custom(func(t *rapid.T) []string {
		switch rapid.IntRange(0, 2).Draw(t, "kind") {
		case 0:
			return nil
		case 1:
			return []string{}
		}
		return rapid.SliceOfN(str, 1, 4).Draw(t, "items")
	})
	when := rapid.Custom(func(t *rapid.T) time.Time {
		if rapid.Bool().Draw(t, "zero") {
			return time.Time{}
		}
		tm := time.Unix(rapid.Int64Range(0, 4e9).Draw(t, "sec"), rapid.Int64Range(0, 999_999_999).Draw(t, "nsec"))
		if off := rapid.IntRange(-3, 3).Draw(t, "hours"); off != 0 {
			return tm.In(time.FixedZone("", off*3600))
		}
		return tm.UTC()
	})
	c := &RegisterInstance{Time: when.Draw(t, "time"), Replace: rapid.Bool().Draw(t, "replace"), Instance: state.Instance{
		Namespace: str.Draw(t, "ns"), Service: str.Draw(t, "svc"), ID: str.Draw(t, "id"), RevisionTag: str.Draw(t, "rev"),
		Address: str.Draw(t, "addr"), Port: rapid.Int32().Draw(t, "port"), HeartbeatTimeout: rapid.Int32().Draw(t, "timeout"),
		PublicURL: str.Draw(t, "url"), Endpoints: list.Draw(t, "endpoints"), Tags: list.Draw(t, "tags"),
		Metadata:     state.MetadataOf(rapid.MapOfN(str, str, 0, 4).Draw(t, "md")),
		RegisteredAt: when.Draw(t, "registered"), RegIndex: rapid.Uint64().Draw(t, "reg"), Token: str.Draw(t, "token"),
	}}
	if rapid.Bool().Draw(t, "dead") {
		c.ReplaceDead = &state.Expiry{Key: state.InstanceKey{Namespace: str.Draw(t, "dns"), Service: str.Draw(t, "dsvc"), ID: str.Draw(t, "did")},
			RegIndex: rapid.Uint64().Draw(t, "dreg"), Deadline: when.Draw(t, "deadline")}
	}
	return c
}

// The binary body decodes to exactly what the JSON body of the same
// command decodes to, so replicas that read either agree.
func TestRegisterInstanceBinaryMatchesJSON(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		c := genRegisterInstance(rt)
		b, err := Encode(c)
		if err != nil {
			rt.Fatal(err)
		}
		if b[0] != byte(TypeRegisterInstance) || b[1] != registerBinV1 {
			rt.Fatalf("header % x, want 03 01", b[:2])
		}
		got, err := Decode(b)
		if err != nil {
			rt.Fatal(err)
		}
		if want := decodeJSON(t, c); !reflect.DeepEqual(got, want) {
			rt.Fatalf("binary decodes to\n%#v\nJSON to\n%#v", got, want)
		}
	})
}

// Every cut of an encoding, and any byte changed in it, is refused or
// decodes; it never panics. A cut one never decodes.
func TestRegisterInstanceBinaryRefusesDamage(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		b, err := Encode(genRegisterInstance(rt))
		if err != nil {
			rt.Fatal(err)
		}
		refusesDamage(rt, b)
	})
}

// refusesDamage checks a binary command b: every cut of it is refused, a
// trailing byte too, and a byte changed in it does not make Decode panic.
func refusesDamage(rt *rapid.T, b []byte) {
	for n := 2; n < len(b); n++ {
		if _, err := Decode(b[:n]); err == nil {
			rt.Fatalf("a cut at %d of %d bytes decoded", n, len(b))
		}
	}
	if _, err := Decode(append(b, 0)); err == nil {
		rt.Fatal("a trailing byte was accepted")
	}
	i := rapid.IntRange(2, len(b)-1).Draw(rt, "at")
	damaged := append([]byte(nil), b...)
	damaged[i] ^= byte(rapid.IntRange(1, 255).Draw(rt, "xor"))
	_, _ = Decode(damaged) // must not panic
}
