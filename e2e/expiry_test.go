package e2e

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"
)

// TestExpiry runs two instances with heartbeat_timeout 3 side by side: one
// stops heartbeating and must die at its deadline, not later and not
// earlier; the other heartbeats every second and must outlive three timeouts.
func TestExpiry(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOpts{Dev: true})
	const ns, svc = "fleet", "worker"

	t.Run("stops heartbeating", func(t *testing.T) {
		t.Parallel()
		since := s.status(t).EventIndex
		reg := s.register(t, ns, svc, map[string]any{"id": "dying", "heartbeat_timeout": 3, "tags": []string{"doomed"}})
		hb := s.beat(t, ns, svc, "dying", reg.Token)
		deadline := hb.ExpiresAt // its last expires_at
		if d := time.Until(deadline); d < time.Second || d > 3*time.Second+100*time.Millisecond {
			t.Fatalf("expires_at %v is %v away; want about 3 s", deadline, d)
		}
		// expires_at has millisecond precision; the real deadline may lie
		// up to a millisecond later. From here on the instance is dead.
		dead := deadline.Add(time.Millisecond)

		// Until it disappears, reads may show it, but never as passing once
		// the deadline has passed.
		tick := time.NewTicker(25 * time.Millisecond)
		defer tick.Stop()
		giveUp := time.Now().Add(15 * time.Second)
		sawCritical := false
		for {
			asked := time.Now()
			r := s.do(t, "GET", instPath(ns, svc, "dying"), nil)
			if r.Status == http.StatusNotFound {
				if asked.Before(deadline) {
					t.Fatalf("instance gone at %v, before its deadline %v", asked, deadline)
				}
				break
			}
			got := decode[instance](t, r.want(t, http.StatusOK))
			if !got.ExpiresAt.Equal(deadline) {
				t.Errorf("GET shows expires_at %v, the heartbeat said %v", got.ExpiresAt, deadline)
			}
			switch {
			case got.Status == "passing" && !asked.Before(dead):
				t.Fatalf("instance shown passing at %v, after expires_at %v", asked, deadline)
			case got.Status == "critical":
				sawCritical = true
			case got.Status != "passing":
				t.Fatalf("status %q", got.Status)
			}
			list := s.instances(t, ns, svc, "status=passing&tag=doomed")
			if len(list) > 0 && !asked.Before(dead) {
				t.Fatalf("status=passing lists it at %v, after expires_at %v", asked, deadline)
			}
			if !asked.Before(dead) {
				// A heartbeat after the deadline finds no instance, even
				// with the current token and before the expiry is committed.
				s.heartbeat(t, ns, svc, "dying", hb.Token).wantError(t, http.StatusNotFound, "not_found", "dying")
			}
			if time.Now().After(giveUp) {
				t.Fatalf("instance still readable %v after its deadline", time.Since(deadline))
			}
			<-tick.C
		}
		t.Logf("saw status critical before removal: %v", sawCritical)
		s.heartbeat(t, ns, svc, "dying", hb.Token).wantError(t, http.StatusNotFound, "not_found", "dying")
		if ids := instanceIDs(s.instances(t, ns, svc, "tag=doomed")); len(ids) != 0 {
			t.Errorf("expired instance still listed: %v", ids)
		}

		// The instance.timeout event is stamped with the deadline, to the millisecond.
		ev := waitEvent(t, s, "type=instance.timeout&namespace="+ns+"&service="+svc, since, func(e event) bool {
			var p removedPayload
			return json.Unmarshal(e.Payload, &p) == nil && p.ID == "dying"
		})
		if !ev.Time.Equal(deadline) {
			t.Errorf("instance.timeout time %v, want the last expires_at %v", ev.Time, deadline)
		}
		var p removedPayload
		if err := json.Unmarshal(ev.Payload, &p); err != nil {
			t.Fatal(err)
		}
		if !p.Deadline.Equal(deadline) {
			t.Errorf("instance.timeout payload deadline %v, want %v", p.Deadline, deadline)
		}
		// The id is free again.
		s.register(t, ns, svc, map[string]any{"id": "dying", "heartbeat_timeout": 3})
		s.do(t, "DELETE", instPath(ns, svc, "dying"), nil).want(t, http.StatusNoContent)
	})

	t.Run("keeps heartbeating", func(t *testing.T) {
		t.Parallel()
		since := s.status(t).EventIndex
		reg := s.register(t, ns, svc, map[string]any{"id": "steady", "heartbeat_timeout": 3})
		token := reg.Token
		survive := reg.RegisteredAt.Add(3*3*time.Second + 500*time.Millisecond) // past three timeouts
		beats := 0
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for time.Now().Before(survive) {
			<-tick.C
			token = s.beat(t, ns, svc, "steady", token).Token
			beats++
			got := decode[instance](t, s.do(t, "GET", instPath(ns, svc, "steady"), nil).want(t, http.StatusOK))
			if got.Status != "passing" {
				t.Fatalf("after %d heartbeats: status %s", beats, got.Status)
			}
		}
		if beats < 9 {
			t.Errorf("only %d heartbeats in three timeouts", beats)
		}
		evs := s.events(t, "type=instance.timeout&namespace="+ns+"&service="+svc+"&after="+strconv.FormatUint(since, 10)).Events
		for _, e := range evs {
			var p removedPayload
			if json.Unmarshal(e.Payload, &p) == nil && p.ID == "steady" {
				t.Errorf("a heartbeating instance timed out: %+v", e)
			}
		}
		if ids := instanceIDs(s.instances(t, ns, svc, "status=passing")); !slices.Contains(ids, "steady") {
			t.Errorf("steady not listed as passing: %v", ids)
		}
	})
}

// waitEvent long-polls the feed (query plus after) until an event matching
// match arrives, for at most 15 s, and returns it.
func waitEvent(t testing.TB, s *server, query string, after uint64, match func(event) bool) event {
	t.Helper()
	giveUp := time.Now().Add(15 * time.Second)
	for time.Now().Before(giveUp) {
		list := s.events(t, query+"&wait=5&after="+strconv.FormatUint(after, 10))
		for _, e := range list.Events {
			if match(e) {
				return e
			}
		}
		after = list.Next
	}
	t.Fatalf("no event for %q within 15 s", query)
	return event{}
}
