package lease

import (
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/muster-registry/muster/internal/registry"
	"github.com/muster-registry/muster/internal/state"
)

// TestKeysWithOneHash runs registrations whose keys all hash alike through
// the table: each keeps its own lease, token and expiry, also after one of
// them leaves and comes back, since the table's map is keyed by the hash.
func TestKeysWithOneHash(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tb, err := New(Options{})
		if err != nil {
			t.Fatal(err)
		}
		tb.keyHash = func(state.InstanceKey) uint64 { return 42 }
		mk := func(id string, reg uint64, timeout int32) *state.Instance {
			return &state.Instance{Namespace: "ns", Service: "svc", ID: id, RegIndex: reg, HeartbeatTimeout: timeout, Token: "tok-" + id}
		}
		a, b, c := mk("a", 1, 3), mk("b", 2, 3), mk("c", 3, 60)
		for _, inst := range []*state.Instance{a, b, c} {
			tb.InstanceAdded(inst)
		}
		tb.SetLeader(true)
		defer tb.SetLeader(false)

		if _, _, err := tb.Heartbeat(b.Key(), "tok-a"); !errors.Is(err, registry.ErrTokenMismatch) {
			t.Fatalf("b renewed with a's token: %v", err)
		}
		tokB, _, err := tb.Heartbeat(b.Key(), "tok-b")
		if err != nil {
			t.Fatal(err)
		}
		// b leaves and comes back as a new registration; a and c stay.
		tb.InstanceRemoved(b)
		if _, ok := tb.Get(b.Key(), 2); ok {
			t.Fatal("b still tracked after removal")
		}
		b2 := mk("b", 4, 60)
		tb.InstanceAdded(b2)
		if _, _, err := tb.Heartbeat(b.Key(), tokB); !errors.Is(err, registry.ErrTokenMismatch) {
			t.Fatalf("old registration's token renewed the new one: %v", err)
		}
		for _, inst := range []*state.Instance{a, b2, c} {
			if l, ok := tb.Get(inst.Key(), inst.RegIndex); !ok || l.Token != inst.Token {
				t.Fatalf("%s: lease %+v, %v", inst.ID, l, ok)
			}
		}
		if got := tb.Tokens(); len(got) != 3 || got[1] != "tok-a" || got[4] != "tok-b" || got[3] != "tok-c" {
			t.Fatalf("tokens %v", got)
		}
		// Only a (3 s, never renewed) expires; c and b2 have 60 s.
		time.Sleep(3*time.Second + 2*tick)
		synctest.Wait()
		select {
		case batch := <-tb.Expired():
			if len(batch) != 1 || batch[0].Key != a.Key() || batch[0].RegIndex != 1 {
				t.Fatalf("expired %+v, want only a", batch)
			}
		default:
			t.Fatal("a did not expire")
		}
	})
}
