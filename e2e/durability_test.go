package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// durableView is everything a client can see that must survive a restart:
// revisions and defaults, the stored instance fields, and the event feed.
type durableView struct {
	Revisions map[string][]revision
	Defaults  map[string]string
	Instances map[string][]instance
	Events    []event
}

var durableServices = []struct{ ns, name string }{{"dur", "api"}, {"dur", "web"}, {"other", "db"}}

func readDurable(t *testing.T, s *server) durableView {
	t.Helper()
	v := durableView{Revisions: map[string][]revision{}, Defaults: map[string]string{}, Instances: map[string][]instance{}}
	for _, sv := range durableServices {
		key := sv.ns + "/" + sv.name
		v.Revisions[key] = s.revisions(t, sv.ns, sv.name)
		if r := s.do(t, "GET", svcPath(sv.ns, sv.name), nil); r.Status == http.StatusOK {
			v.Defaults[key] = decode[revision](t, r).RevisionTag
		}
		for _, in := range s.instances(t, sv.ns, sv.name, "") {
			v.Instances[key] = append(v.Instances[key], in.stored())
		}
	}
	v.Events = s.events(t, "after=0&limit=10000").Events
	return v
}

func compareDurable(t *testing.T, what string, want, got durableView) {
	t.Helper()
	if !reflect.DeepEqual(want.Revisions, got.Revisions) {
		t.Errorf("%s: revisions\n%+v\nwant\n%+v", what, got.Revisions, want.Revisions)
	}
	if !reflect.DeepEqual(want.Defaults, got.Defaults) {
		t.Errorf("%s: defaults %v, want %v", what, got.Defaults, want.Defaults)
	}
	if !reflect.DeepEqual(want.Instances, got.Instances) {
		t.Errorf("%s: instances\n%+v\nwant\n%+v", what, got.Instances, want.Instances)
	}
	if len(want.Events) != len(got.Events) {
		t.Errorf("%s: %d events, want %d", what, len(got.Events), len(want.Events))
	}
	for i := range min(len(want.Events), len(got.Events)) {
		if !eventEqual(want.Events[i], got.Events[i]) {
			t.Errorf("%s: event %d\n%+v\nwant\n%+v", what, i, got.Events[i], want.Events[i])
		}
	}
}

// TestDurability writes a mix, kills the server with SIGKILL and restarts it
// on the same data directory; then does it again with a graceful stop. Every
// acknowledged write must be there, heartbeat tokens must carry over (and
// spent ones stay spent), and deadlines must be reset by the restart.
func TestDurability(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOpts{})

	// Revisions: a default by rule, an explicit default, a non-semver tag,
	// a deletion, a re-post.
	s.postRevision(t, "dur", "api", map[string]any{"revision_tag": "1.0.0", "metadata": map[string]string{"git": "abc"}})
	s.postRevision(t, "dur", "api", map[string]any{"revision_tag": "2.0.0"})
	s.postRevision(t, "dur", "api", map[string]any{"revision_tag": "1.5.0", "is_default": true})
	s.postRevision(t, "dur", "api", map[string]any{"revision_tag": "edge"})
	s.postRevision(t, "dur", "web", map[string]any{"revision_tag": "3.0.0"})
	s.postRevision(t, "dur", "web", map[string]any{"revision_tag": "3.1.0"})
	s.do(t, "DELETE", svcPath("dur", "web")+"/revisions/3.1.0", nil).want(t, http.StatusNoContent)
	s.postRevision(t, "dur", "api", map[string]any{"revision_tag": "1.0.0"})

	// Instances: one heartbeated several times, one patched, one replaced,
	// one deleted, one with a short timeout to check the deadline reset.
	beaten := s.register(t, "dur", "api", map[string]any{"id": "beaten", "heartbeat_timeout": 60, "tags": []string{"x"}})
	spent := []string{beaten.Token}
	cur := beaten.Token
	for range 3 {
		cur = s.beat(t, "dur", "api", "beaten", cur).Token
		spent = append(spent, cur)
	}
	spent = spent[:len(spent)-1]
	fresh := s.register(t, "dur", "api", map[string]any{"id": "fresh", "heartbeat_timeout": 60})
	s.do(t, "PATCH", instPath("dur", "api", "fresh"), map[string]any{"metadata": map[string]string{"a": "b"}}).want(t, http.StatusOK)
	replacedOld := s.register(t, "other", "db", map[string]any{"id": "db-1", "heartbeat_timeout": 60})
	replaced := decode[registration](t, s.do(t, "PUT", instPath("other", "db", "db-1"), map[string]any{"heartbeat_timeout": 60, "port": 5432}).want(t, http.StatusOK))
	s.register(t, "dur", "web", map[string]any{"id": "gone"})
	s.do(t, "DELETE", instPath("dur", "web", "gone"), nil).want(t, http.StatusNoContent)
	short := s.register(t, "dur", "web", map[string]any{"id": "short", "heartbeat_timeout": 3})
	shortHB := s.beat(t, "dur", "web", "short", short.Token)

	want := readDurable(t, s)
	if len(want.Events) < 15 {
		t.Fatalf("only %d events written", len(want.Events))
	}

	s.Kill()
	// Stay down past short's deadline: a restart must not expire it at once.
	waitUntil(shortHB.ExpiresAt.Add(100 * time.Millisecond))
	restarted := time.Now()
	s = s.restart(t)

	compareDurable(t, "after SIGKILL", want, readDurable(t, s))
	got := decode[instance](t, s.do(t, "GET", instPath("dur", "web", "short"), nil).want(t, http.StatusOK))
	if got.Status != "passing" || got.ExpiresAt.Before(restarted.Add(3*time.Second-time.Millisecond)) {
		t.Errorf("short after restart: status %s expires_at %v; want passing until at least %v (deadline reset to now + 3 s)",
			got.Status, got.ExpiresAt, restarted.Add(3*time.Second))
	}
	for _, id := range []string{"beaten", "fresh"} {
		if in := decode[instance](t, s.do(t, "GET", instPath("dur", "api", id), nil).want(t, http.StatusOK)); in.Status != "passing" {
			t.Errorf("%s after restart: status %s", id, in.Status)
		}
	}
	// Spent tokens stay spent; the current ones work.
	for _, tok := range spent {
		s.heartbeat(t, "dur", "api", "beaten", tok).wantError(t, http.StatusConflict, "token_mismatch", "")
	}
	cur = s.beat(t, "dur", "api", "beaten", cur).Token
	freshTok := s.beat(t, "dur", "api", "fresh", fresh.Token).Token // never heartbeated before: the registration token
	s.heartbeat(t, "other", "db", "db-1", replacedOld.Token).wantError(t, http.StatusConflict, "token_mismatch", "")
	dbTok := s.beat(t, "other", "db", "db-1", replaced.Token).Token
	// The dead-before-restart instance expires one timeout after the restart,
	// stamped with its new deadline.
	ev := waitEvent(t, s, "type=instance.timeout&namespace=dur&service=web", uint64(len(want.Events)), func(e event) bool {
		var p removedPayload
		return json.Unmarshal(e.Payload, &p) == nil && p.ID == "short"
	})
	if !ev.Time.Equal(got.ExpiresAt) {
		t.Errorf("short timed out at %v, want its reset deadline %v", ev.Time, got.ExpiresAt)
	}

	// Write more, then a graceful stop: everything is kept again.
	s.postRevision(t, "dur", "web", map[string]any{"revision_tag": "4.0.0"})
	cur = s.beat(t, "dur", "api", "beaten", cur).Token
	want = readDurable(t, s)
	// A watcher is connected while the server stops: it is told to end, and
	// does not hold the shutdown up.
	newest := want.Events[len(want.Events)-1].ID
	_, stream, _ := openSSE(t, s, "after="+strconv.FormatUint(newest-1, 10))
	wantSSEIDs(t, stream, newest)
	stopping := time.Now()
	s.Stop()
	if d := time.Since(stopping); d > 10*time.Second {
		t.Errorf("graceful stop with an open event stream took %v", d)
	}
	select {
	case e, ok := <-stream:
		if ok {
			t.Errorf("event stream went on after the stop: %+v", e)
		}
	case <-time.After(5 * time.Second):
		t.Errorf("event stream still open after the server stopped")
	}
	if !strings.Contains(s.Log.String(), `"msg":"stopped"`) {
		t.Errorf("no \"stopped\" log line after SIGTERM")
	}
	s = s.restart(t)
	compareDurable(t, "after SIGTERM", want, readDurable(t, s))
	s.beat(t, "dur", "api", "beaten", cur)
	s.beat(t, "dur", "api", "fresh", freshTok)
	s.beat(t, "other", "db", "db-1", dbTok)
	if def := s.defaultRevision(t, "dur", "api"); def.RevisionTag != "1.5.0" || def.Metadata == nil {
		t.Errorf("dur/api default %+v, want 1.5.0", def)
	}
	s.Stop()
}

// TestSecondServerSameDataDir starts a second server on a data directory in
// use: it must fail with a clear message and a non-zero exit, and leave the
// first one serving with its data and tokens intact.
func TestSecondServerSameDataDir(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOpts{})
	s.postRevision(t, "lock", "svc", map[string]string{"revision_tag": "1.0.0"})
	reg := s.register(t, "lock", "svc", map[string]any{"id": "i1"})
	tok := s.beat(t, "lock", "svc", "i1", reg.Token).Token

	second := serverOpts{DataDir: s.Opts.DataDir, HTTPAddr: freeAddr(t), RaftAddr: freeAddr(t)}
	code, out := runMuster(t, second.args()...)
	if code == 0 {
		t.Fatalf("second server on the same data directory exited 0; output:\n%s", out)
	}
	if inUse := strings.Contains(out, "in use") || strings.Contains(out, "locked"); !inUse || !strings.Contains(out, s.Opts.DataDir) {
		t.Errorf("second server's error does not say the data directory is in use:\n%s", out)
	}
	if strings.Contains(out, "muster ready") {
		t.Errorf("second server said it was ready:\n%s", out)
	}

	// The first is unharmed.
	tok = s.beat(t, "lock", "svc", "i1", tok).Token
	s.postRevision(t, "lock", "svc", map[string]string{"revision_tag": "1.1.0"})
	if def := s.defaultRevision(t, "lock", "svc"); def.RevisionTag != "1.1.0" {
		t.Errorf("default %s, want 1.1.0", def.RevisionTag)
	}
	s.Stop()
	s = s.restart(t)
	s.beat(t, "lock", "svc", "i1", tok)
	if n := len(s.revisions(t, "lock", "svc")); n != 2 {
		t.Errorf("%d revisions after restart, want 2", n)
	}
	s.Stop()
}

// TestSnapshotWithoutLogRefused takes a real Raft snapshot, restarts from it,
// then deletes raft/raft.db: the server must refuse to start empty. Raft
// takes snapshots only on its snapshot interval (2–4 minutes with
// hashicorp/raft's default, which muster does not expose), so this runs only
// with MUSTER_E2E_SLOW=1.
func TestSnapshotWithoutLogRefused(t *testing.T) {
	t.Parallel()
	// Raft checks for a snapshot every interval to twice that: make it short.
	s := startServer(t, serverOpts{SnapshotThreshold: 16, SnapshotInterval: 500 * time.Millisecond})
	for i := range 30 { // 30 revisions and 15 instances: 45 commands
		s.postRevision(t, "snap", "svc", map[string]string{"revision_tag": fmt.Sprintf("1.%d.0", i)})
		if i%2 == 0 {
			s.register(t, "snap", "svc", map[string]any{"id": "i" + strconv.Itoa(i), "heartbeat_timeout": 120})
		}
	}
	reg := s.register(t, "snap", "svc", map[string]any{"id": "tok", "heartbeat_timeout": 120})
	tok := s.beat(t, "snap", "svc", "tok", reg.Token).Token
	snapDir := filepath.Join(s.Opts.DataDir, "raft", "snapshots")
	// Heartbeat "tok" while waiting (the wait is longer than any timeout).
	giveUp := time.Now().Add(time.Minute)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		if m, _ := filepath.Glob(filepath.Join(snapDir, "*", "meta.json")); len(m) > 0 {
			break
		}
		if time.Now().After(giveUp) {
			t.Fatalf("no raft snapshot in %s after a minute", snapDir)
		}
		<-tick.C
		tok = s.beat(t, "snap", "svc", "tok", tok).Token
	}
	want := readSnapView(t, s)
	s.Stop()

	// A restart from the snapshot plus the log's tail keeps everything.
	s = s.restart(t)
	if got := readSnapView(t, s); !reflect.DeepEqual(got, want) {
		t.Errorf("after restart from a snapshot:\n%+v\nwant\n%+v", got, want)
	}
	s.beat(t, "snap", "svc", "tok", tok)
	s.Stop()

	if err := os.Remove(filepath.Join(s.Opts.DataDir, "raft", "raft.db")); err != nil {
		t.Fatal(err)
	}
	code, out := runMuster(t, s.Opts.args()...)
	if code == 0 || !strings.Contains(out, "has snapshots but no log") {
		t.Fatalf("start without raft.db: exit %d, output:\n%s\nwant a refusal naming the missing log", code, out)
	}
}

type snapView struct {
	Revisions []revision
	Instances []instance
	Events    string
}

func readSnapView(t *testing.T, s *server) snapView {
	t.Helper()
	v := snapView{Revisions: s.revisions(t, "snap", "svc")}
	for _, in := range s.instances(t, "snap", "svc", "") {
		v.Instances = append(v.Instances, in.stored())
	}
	b, _ := json.Marshal(s.events(t, "after=0&limit=10000").Events)
	v.Events = string(b)
	return v
}
