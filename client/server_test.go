package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/muster-registry/muster/api"
	"github.com/muster-registry/muster/client"
	"github.com/muster-registry/muster/internal/servertest"
)

// These tests run the SDK against the real server, in-process.

func waitUntil(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(d); !cond(); {
		if time.Now().After(end) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRoutesAgainstTheServer(t *testing.T) {
	srv := servertest.Start(t, servertest.Options{})
	c, err := client.New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.RegisterRevision(ctx, "my-org", "my-service", api.RegisterRevisionRequest{RevisionTag: "1.2.9"}); err != nil {
		t.Fatal(err)
	}
	rev, idx, err := c.GetRevision(ctx, "my-org", "my-service", client.GetRevisionOptions{})
	if err != nil || rev.RevisionTag != "1.2.9" || !rev.IsDefault || idx == 0 {
		t.Fatalf("GetRevision = %+v, %d, %v", rev, idx, err)
	}
	reg, err := c.RegisterInstance(ctx, "my-org", "my-service", api.RegisterInstanceRequest{ID: "web-1", Tags: []string{"api"}})
	if err != nil || reg.Token == "" {
		t.Fatalf("RegisterInstance = %+v, %v", reg, err)
	}
	if _, err := c.RegisterInstance(ctx, "my-org", "my-service", api.RegisterInstanceRequest{ID: "web-1"}); !errors.Is(err, client.ErrInstanceExists) {
		t.Fatalf("second POST = %v, want ErrInstanceExists", err)
	}
	hb, err := c.Heartbeat(ctx, "my-org", "my-service", "web-1", reg.Token)
	if err != nil || hb.Token == reg.Token {
		t.Fatalf("Heartbeat = %+v, %v", hb, err)
	}
	_, err = c.Heartbeat(ctx, "my-org", "my-service", "web-1", reg.Token)
	var ae *client.APIError
	if !errors.Is(err, client.ErrTokenMismatch) || !errors.As(err, &ae) || ae.StatusCode != 409 || ae.RequestID == "" {
		t.Fatalf("spent token = %v", err)
	}
	list, _, err := c.ListInstances(ctx, "my-org", "my-service", client.InstanceListOptions{Tags: []string{"api"}, Status: api.StatusPassing})
	if err != nil || len(list.Values) != 1 {
		t.Fatalf("ListInstances = %+v, %v", list, err)
	}
	if _, _, err := c.ListInstances(ctx, "my-org", "my-service", client.InstanceListOptions{Status: "bogus"}); !errors.Is(err, client.ErrBadRequest) {
		t.Fatalf("bad status filter = %v", err)
	}
}

// A Heartbeater keeps its instance alive across a server restart (tokens
// and registrations survive; deadlines are reset), and a Watcher follows.
func TestHeartbeaterAndWatcherRideOutARestart(t *testing.T) {
	dir := t.TempDir()
	addr := servertest.FreeAddr(t)
	srv := servertest.Start(t, servertest.Options{DataDir: dir, HTTPAddr: addr})
	c, err := client.New("http://"+addr, client.WithTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var mu sync.Mutex
	var kinds []client.HeartbeatEventKind
	hb := client.NewHeartbeater(c, "acme", "web", api.RegisterInstanceRequest{ID: "web-1", HeartbeatTimeout: 9},
		client.HeartbeaterOptions{OnEvent: func(ev client.HeartbeatEvent) {
			mu.Lock()
			kinds = append(kinds, ev.Kind)
			mu.Unlock()
		}})
	if err := hb.Start(ctx); err != nil {
		t.Fatal(err)
	}
	w := client.NewWatcher(c, "acme", "web", client.WatcherOptions{Wait: time.Second})
	go w.Run(ctx)
	waitUntil(t, "the watcher to see web-1", 10*time.Second, func() bool { return len(w.Instances()) == 1 })
	first := hb.Instance()

	srv.Stop(t)
	mu.Lock()
	before := len(kinds)
	mu.Unlock()
	servertest.Start(t, servertest.Options{DataDir: dir, HTTPAddr: addr}) // stopped by its cleanup

	// Two heartbeats after the restart succeed with the token from before
	// it, and the registration is the same one, passing. (No wall-clock
	// bound is asserted: waitUntil only gives up after a long time.)
	waitUntil(t, "two heartbeats after the restart", 60*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		ok := 0
		for _, k := range kinds[before:] {
			if k == client.HeartbeatOK {
				ok++
			}
		}
		return ok >= 2
	})
	inst, _, err := c.GetInstance(ctx, "acme", "web", "web-1")
	if err != nil || inst.Status != api.StatusPassing || !inst.RegisteredAt.Equal(first.RegisteredAt) {
		t.Fatalf("after restart: %+v, %v (first registered %s)", inst, err, first.RegisteredAt)
	}
	mu.Lock()
	for _, k := range kinds {
		if k == client.HeartbeatReregistered || k == client.HeartbeatConflict {
			t.Errorf("the restart forced a %s", k)
		}
	}
	mu.Unlock()

	// The watcher follows a change made after the restart.
	if _, err := c.RegisterInstance(ctx, "acme", "web", api.RegisterInstanceRequest{ID: "web-2"}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the watcher to see web-2", 10*time.Second, func() bool { return len(w.Instances()) == 2 })

	if err := hb.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.GetInstance(ctx, "acme", "web", "web-1"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("after Stop: %v, want not found", err)
	}
	waitUntil(t, "the watcher to drop web-1", 10*time.Second, func() bool { return len(w.Instances()) == 1 })
}

// A batch answers each heartbeat on its own: good ones renew, a spent
// token, a made-up id and a malformed name fail alone.
func TestHeartbeatBatchAgainstTheServer(t *testing.T) {
	srv := servertest.Start(t, servertest.Options{})
	c, err := client.New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var beats []api.BatchHeartbeat
	for _, id := range []string{"a", "b", "c"} {
		reg, err := c.RegisterInstance(ctx, "acme", "web", api.RegisterInstanceRequest{ID: id})
		if err != nil {
			t.Fatal(err)
		}
		beats = append(beats, api.BatchHeartbeat{Namespace: "acme", Service: "web", ID: id, Token: reg.Token})
	}
	spent := beats[2]
	if _, err := c.Heartbeat(ctx, "acme", "web", "c", spent.Token); err != nil {
		t.Fatal(err)
	}
	beats = append(beats,
		api.BatchHeartbeat{Namespace: "acme", Service: "web", ID: "ghost", Token: "x"},
		api.BatchHeartbeat{Namespace: "Acme", Service: "web", ID: "a", Token: "x"})
	res, err := c.HeartbeatBatch(ctx, beats)
	if err != nil || len(res) != 5 {
		t.Fatalf("HeartbeatBatch = %+v, %v", res, err)
	}
	for i := 0; i < 2; i++ {
		if res[i].Error != nil || res[i].Token == "" || res[i].Token == beats[i].Token || res[i].ExpiresAt.IsZero() {
			t.Errorf("result %d = %+v, want a renewal", i, res[i])
		}
	}
	for i, want := range map[int]string{2: api.ErrTokenMismatch, 3: api.ErrNotFound, 4: api.ErrValidationFailed} {
		if res[i].Error == nil || res[i].Error.Type != want || res[i].Token != "" {
			t.Errorf("result %d = %+v, want error %s", i, res[i], want)
		}
	}
	// The new tokens are the current ones; the sent ones are spent.
	if _, err := c.Heartbeat(ctx, "acme", "web", "a", res[0].Token); err != nil {
		t.Errorf("batch token refused: %v", err)
	}
	if _, err := c.Heartbeat(ctx, "acme", "web", "b", beats[1].Token); !errors.Is(err, client.ErrTokenMismatch) {
		t.Errorf("spent token after a batch = %v", err)
	}
	// A full batch fits the route's body limit (larger than other routes').
	full := make([]api.BatchHeartbeat, api.MaxBatchHeartbeats)
	for i := range full {
		full[i] = api.BatchHeartbeat{Namespace: "acme", Service: "web", ID: fmt.Sprintf("ghost-%04d", i), Token: "AAAAAAAAAAAAAAAAAAAAAA"}
	}
	res, err = c.HeartbeatBatch(ctx, full)
	if err != nil || len(res) != len(full) || res[len(res)-1].Error == nil || res[len(res)-1].Error.Type != api.ErrNotFound {
		t.Fatalf("full batch: %d results, %v", len(res), err)
	}
	if _, err := c.HeartbeatBatch(ctx, append(full, full[0])); !errors.Is(err, client.ErrValidation) {
		t.Errorf("a batch over the limit = %v, want a validation error", err)
	}
	if _, err := c.HeartbeatBatch(ctx, nil); !errors.Is(err, client.ErrValidation) {
		t.Errorf("empty batch = %v, want a validation error", err)
	}
}

// ListInstances against the real server (its hand-written encoder): plain
// and odd strings, empty and nil lists and maps, paging. Every answer
// decodes to what encoding/json makes of the same bytes.
func TestListInstancesDecodesTheServersAnswers(t *testing.T) {
	srv := servertest.Start(t, servertest.Options{})
	c, err := client.New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	odd := "q\"b\\s\n<>&é\u2028"
	regs := []api.RegisterInstanceRequest{
		{ID: "plain", Address: "10.0.0.1", Port: 8080, Tags: []string{"a", "b"}, Endpoints: []string{"/x"}, Metadata: map[string]string{"k": "v"}},
		{ID: "odd", Address: "host.example", PublicURL: "https://x.example/?a=1&b=<2>", Tags: []string{odd, "é"}, Metadata: map[string]string{odd: odd, "e": ""}},
		{ID: "bare"},
	}
	for _, r := range regs {
		if _, err := c.RegisterInstance(ctx, "acme", "web", r); err != nil {
			t.Fatal(err)
		}
	}
	for _, limit := range []int{0, 1, 2} {
		var marker string
		for page := 0; ; page++ {
			got, _, err := c.ListInstances(ctx, "acme", "web", client.InstanceListOptions{Limit: limit, Marker: marker})
			if err != nil {
				t.Fatal(err)
			}
			q := url.Values{}
			if limit > 0 {
				q.Set("limit", fmt.Sprint(limit))
			}
			if marker != "" {
				q.Set("marker", marker)
			}
			resp, err := http.Get(srv.URL + "/v1/services/acme/web/instances?" + q.Encode())
			if err != nil {
				t.Fatal(err)
			}
			var want api.List[api.Instance]
			err = json.NewDecoder(resp.Body).Decode(&want)
			_ = resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("limit %d page %d:\n got %+v\nwant %+v", limit, page, got, want)
			}
			if want.Metadata.NextMarker == nil {
				break
			}
			marker = *want.Metadata.NextMarker
		}
	}
}
