package client

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/muster-registry/muster/api"
)

const (
	hbPath   = "/v1/services/acme/web/instances/web-1/heartbeat"
	instPath = "/v1/services/acme/web/instances/web-1"
)

// eventLog collects the events of a heartbeater.
type eventLog struct {
	mu  sync.Mutex
	evs []HeartbeatEvent
}

func (l *eventLog) add(ev HeartbeatEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.evs = append(l.evs, ev)
}

func (l *eventLog) all() []HeartbeatEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.evs)
}

func (l *eventLog) kinds() []HeartbeatEventKind {
	var ks []HeartbeatEventKind
	for _, ev := range l.all() {
		ks = append(ks, ev.Kind)
	}
	return ks
}

func (l *eventLog) count(k HeartbeatEventKind) int {
	n := 0
	for _, ev := range l.all() {
		if ev.Kind == k {
			n++
		}
	}
	return n
}

func (l *eventLog) first(k HeartbeatEventKind) (HeartbeatEvent, bool) {
	for _, ev := range l.all() {
		if ev.Kind == k {
			return ev, true
		}
	}
	return HeartbeatEvent{}, false
}

// within bounds a test's waits: inside a bubble a wait that never ends would
// advance fake time forever instead of failing.
const within = 10 * time.Minute

// recv answers the next value of ch, failing the test if none comes within
// the bound.
func recv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(within):
		t.Fatalf("nothing received within %v", within)
		panic("unreachable")
	}
}

// waitDone waits until h has ended.
func waitDone(t *testing.T, h *Heartbeater) {
	t.Helper()
	select {
	case <-h.Done():
	case <-time.After(within):
		t.Fatalf("heartbeater still running after %v", within)
	}
}

// stopHB stops h with a bounded context.
func stopHB(t *testing.T, h *Heartbeater) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), within)
	defer cancel()
	return h.Stop(ctx)
}

// startHB starts h with ctx, bounded.
func startHB(t *testing.T, h *Heartbeater, ctx context.Context) error {
	t.Helper()
	ch := make(chan error, 1)
	go func() { ch <- h.Start(ctx) }()
	return recv(t, ch)
}

// runHB runs h with ctx on a goroutine of its own and answers its result,
// bounded.
func runHB(t *testing.T, h *Heartbeater, ctx context.Context) error {
	t.Helper()
	ch := make(chan error, 1)
	go func() { ch <- h.Run(ctx) }()
	return recv(t, ch)
}

// hbSetup is a heartbeater of acme/web against a fake server.
type hbSetup struct {
	f   *fakeMuster
	tr  *handlerTransport
	c   *Client
	h   *Heartbeater
	log *eventLog
}

func newHBSetup(t *testing.T, req api.RegisterInstanceRequest, opts HeartbeaterOptions) *hbSetup {
	f := newFakeMuster(t)
	c, tr := newMemClient(t, f)
	log := &eventLog{}
	opts.OnEvent = log.add
	return &hbSetup{f: f, tr: tr, c: c, h: NewHeartbeater(c, "acme", "web", req, opts), log: log}
}

func web1(timeout int) api.RegisterInstanceRequest {
	return api.RegisterInstanceRequest{ID: "web-1", Address: "10.0.0.1", Port: 8080, HeartbeatTimeout: timeout}
}

func TestHeartbeaterRegisterMethod(t *testing.T) {
	tests := []struct {
		name     string
		id       string
		wantPath string
		method   string
	}{
		// Without an id it picks one and PUTs too: a retry after a lost
		// answer then cannot register a second instance.
		{"without id PUTs an id of its own", "", "", http.MethodPut},
		{"with id PUTs to take it back", "web-1", instPath, http.MethodPut},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newHBSetup(t, api.RegisterInstanceRequest{ID: tt.id, HeartbeatTimeout: 30}, HeartbeaterOptions{})
				if err := startHB(t, s.h, t.Context()); err != nil {
					t.Fatal(err)
				}
				id := s.h.Instance().ID
				want := tt.wantPath
				if tt.id == "" {
					if len(id) != 16 {
						t.Fatalf("picked id %q, want 16 hex digits", id)
					}
					want = "/v1/services/acme/web/instances/" + id
				}
				if got := s.f.log(tt.method, want); len(got) != 1 {
					t.Fatalf("%s %s requests = %v, want 1", tt.method, want, got)
				}
				if got := s.f.log(http.MethodPost, "/v1/services/acme/web/instances"); len(got) != 0 {
					t.Fatalf("POST registrations %v, want none", got)
				}
				if _, _, ok := s.f.instance(id); !ok || (tt.id != "" && id != tt.id) {
					t.Fatalf("Instance().ID = %q; registered on the server: %v", id, ok)
				}
				if err := stopHB(t, s.h); err != nil {
					t.Fatal(err)
				}
			})
		})
	}
}

func TestHeartbeaterIntervalIsAThirdOfTheTimeoutWithJitter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newHBSetup(t, web1(30), HeartbeaterOptions{})
		start := time.Now()
		if err := startHB(t, s.h, t.Context()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Minute)
		if err := stopHB(t, s.h); err != nil {
			t.Fatal(err)
		}
		hbs := s.f.log(http.MethodPost, hbPath)
		if len(hbs) < 27 || len(hbs) > 34 {
			t.Fatalf("%d heartbeats in 5 minutes, want 27–34 (every 9–11 s)", len(hbs))
		}
		prev := start
		gaps := map[time.Duration]bool{}
		for _, r := range hbs {
			gap := r.At.Sub(prev)
			if gap < 9*time.Second || gap > 11*time.Second {
				t.Errorf("heartbeat %v came %v after the previous one, want 9–11 s", r, gap)
			}
			gaps[gap] = true
			prev = r.At
		}
		if len(gaps) < 2 {
			t.Errorf("all gaps are equal (%v): no jitter", gaps)
		}
		if n := s.log.count(HeartbeatOK); n != len(hbs) {
			t.Errorf("%d HeartbeatOK events for %d heartbeats", n, len(hbs))
		}
	})
}

func TestHeartbeaterRidesOutAServerRestart(t *testing.T) {
	tests := []struct {
		name    string
		refused bool // connection refused instead of 503
	}{
		{"503 unavailable", false},
		{"connection refused", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newHBSetup(t, web1(30), HeartbeaterOptions{})
				var refusing atomic.Bool
				s.tr.refuse = func(*http.Request) error {
					if refusing.Load() {
						return errors.New("connection refused (test)")
					}
					return nil
				}
				if err := startHB(t, s.h, t.Context()); err != nil {
					t.Fatal(err)
				}
				time.Sleep(15 * time.Second)
				lastOK := s.f.log(http.MethodPost, hbPath)
				if len(lastOK) == 0 {
					t.Fatal("no heartbeat in the first 15 s")
				}
				deadline := lastOK[len(lastOK)-1].At.Add(30 * time.Second)

				down := time.Now()
				if tt.refused {
					refusing.Store(true)
				} else {
					s.f.setDown(true, false)
				}
				time.Sleep(40 * time.Second) // longer than the timeout
				up := time.Now()
				refusing.Store(false)
				s.f.setDown(false, true) // a restart pushes every deadline
				time.Sleep(20 * time.Second)

				var during []time.Time
				for _, r := range s.f.log(http.MethodPost, hbPath) {
					if r.At.After(down) && r.At.Before(up) {
						during = append(during, r.At)
					}
				}
				if tt.refused {
					// Refused requests never reach the fake's log: count
					// the failure events instead.
					during = nil
					for _, ev := range s.log.all() {
						if ev.Kind == HeartbeatFailed && ev.Time.After(down) && ev.Time.Before(up) {
							during = append(during, ev.Time)
						}
					}
				}
				if len(during) == 0 || len(during) > 40 {
					t.Fatalf("%d attempts during a 40 s outage, want 1–40", len(during))
				}
				for i := 1; i < len(during); i++ {
					if gap := during[i].Sub(during[i-1]); gap < minRetryDelay {
						t.Errorf("retries %v apart: a hot loop", gap)
					}
				}
				if !slices.ContainsFunc(during, func(at time.Time) bool {
					return !at.Before(deadline.Add(-time.Second)) && at.Before(deadline)
				}) {
					t.Errorf("no attempt in the last second before the deadline %v: %v", deadline, during)
				}
				if n := len(s.f.log(http.MethodPut, instPath)); n != 1 {
					t.Errorf("%d registrations, want 1: the restart must not cost a re-registration", n)
				}
				if n := s.log.count(HeartbeatReregistered); n != 0 {
					t.Errorf("%d HeartbeatReregistered events, want 0", n)
				}
				ev := s.log.all()
				if k := ev[len(ev)-1].Kind; k != HeartbeatOK {
					t.Errorf("last event %v, want heartbeat_ok after the restart", k)
				}
				if inst, _, ok := s.f.instance("web-1"); !ok || !inst.ExpiresAt.After(time.Now()) {
					t.Errorf("instance after the restart: %+v, live %v", inst, ok)
				}
				if err := stopHB(t, s.h); err != nil {
					t.Fatal(err)
				}
			})
		})
	}
}

func TestHeartbeaterReregistersAnExpiredInstance(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Registered under an id the heartbeater picked: the
		// re-registration PUTs the same id again.
		s := newHBSetup(t, api.RegisterInstanceRequest{HeartbeatTimeout: 9, Tags: []string{"blue"}}, HeartbeaterOptions{})
		if err := startHB(t, s.h, t.Context()); err != nil {
			t.Fatal(err)
		}
		first := s.h.Instance()
		time.Sleep(5 * time.Second)
		s.f.setDown(true, false)
		time.Sleep(20 * time.Second)
		s.f.setDown(false, false) // the instance died meanwhile
		// The next retry comes within MaxBackoff (15 s); then a heartbeat
		// within 3.3 s.
		time.Sleep(25 * time.Second)

		path := "/v1/services/acme/web/instances/" + first.ID
		if n := len(s.f.log(http.MethodPut, path)); n != 2 {
			t.Fatalf("%d PUTs of %s, want 2 (the registration, then the re-registration)", n, path)
		}
		ev, ok := s.log.first(HeartbeatReregistered)
		if !ok || !errors.Is(ev.Err, ErrNotFound) {
			t.Fatalf("HeartbeatReregistered event %+v (found %v), want one caused by not_found", ev, ok)
		}
		inst, _, live := s.f.instance(first.ID)
		if !live || !slices.Equal(inst.Tags, []string{"blue"}) || !inst.RegisteredAt.After(first.RegisteredAt) {
			t.Fatalf("server holds %+v (live %v), want a new registration of %s with its tags", inst, live, first.ID)
		}
		if got := s.h.Instance(); !got.RegisteredAt.Equal(inst.RegisteredAt) {
			t.Errorf("Instance() = %+v, want the new registration", got)
		}
		ks := s.log.kinds()
		after := ks[slices.Index(ks, HeartbeatReregistered)+1:]
		if !slices.Contains(after, HeartbeatOK) {
			t.Errorf("no heartbeat succeeded with the new token: %v", after)
		}
		if err := stopHB(t, s.h); err != nil {
			t.Fatal(err)
		}
	})
}

func TestHeartbeaterStopsWhenAnotherProcessHoldsTheID(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newHBSetup(t, web1(30), HeartbeaterOptions{})
		if err := startHB(t, s.h, t.Context()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(15 * time.Second)
		other, err := s.c.PutInstance(t.Context(), "acme", "web", "web-1", web1(30))
		if err != nil {
			t.Fatal(err)
		}
		waitDone(t, s.h)
		if err := s.h.Err(); !errors.Is(err, ErrTokenMismatch) {
			t.Fatalf("Err() = %v, want token_mismatch", err)
		}
		ks := s.log.kinds()
		if !slices.Equal(ks[len(ks)-2:], []HeartbeatEventKind{HeartbeatConflict, HeartbeatStopped}) {
			t.Errorf("events end with %v, want conflict, stopped", ks)
		}
		if d := s.f.log(http.MethodDelete, ""); len(d) != 0 {
			t.Errorf("deleted the other process's instance: %v", d)
		}
		if _, tok, ok := s.f.instance("web-1"); !ok || tok != other.Token {
			t.Errorf("the other process lost web-1 (live %v)", ok)
		}
		if err := stopHB(t, s.h); !errors.Is(err, ErrTokenMismatch) {
			t.Errorf("Stop() = %v, want the terminal error", err)
		}
	})
}

func TestHeartbeaterTokenMismatchAfterALostAnswer(t *testing.T) {
	tests := []struct {
		name         string
		lose         bool // the first heartbeat is processed but its answer lost
		wantConflict bool
	}{
		{"lost answer: our own token was spent, register again", true, false},
		{"503 refusal: nothing was spent, so the id is another's", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newHBSetup(t, web1(30), HeartbeaterOptions{})
				var once atomic.Bool
				if tt.lose {
					s.tr.lose = func(r *http.Request) bool { return r.URL.Path == hbPath && once.CompareAndSwap(false, true) }
				} else {
					s.f.setIntercept(func(w http.ResponseWriter, r *http.Request) bool {
						if r.URL.Path != hbPath || !once.CompareAndSwap(false, true) {
							return false
						}
						s.f.mu.Lock()
						s.f.instances["web-1"].token = "another process's"
						s.f.mu.Unlock()
						writeError(w, http.StatusServiceUnavailable, api.ErrUnavailable, "Busy.")
						return true
					})
				}
				if err := startHB(t, s.h, t.Context()); err != nil {
					t.Fatal(err)
				}
				time.Sleep(30 * time.Second)
				if tt.wantConflict {
					waitDone(t, s.h)
					if !errors.Is(s.h.Err(), ErrTokenMismatch) || s.log.count(HeartbeatConflict) != 1 {
						t.Fatalf("Err() = %v, events %v: want a conflict", s.h.Err(), s.log.kinds())
					}
					return
				}
				ev, ok := s.log.first(HeartbeatReregistered)
				if !ok || !errors.Is(ev.Err, ErrTokenMismatch) {
					t.Fatalf("events %v: want re-registered after token_mismatch", s.log.kinds())
				}
				if n := len(s.f.log(http.MethodPut, instPath)); n != 2 {
					t.Errorf("%d PUTs, want 2 (register, re-register)", n)
				}
				if isClosed(s.h.Done()) {
					t.Fatalf("stopped: %v", s.h.Err())
				}
				if err := stopHB(t, s.h); err != nil {
					t.Fatal(err)
				}
			})
		})
	}
}

func TestHeartbeaterStopDeregisters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newHBSetup(t, web1(30), HeartbeaterOptions{})
		if err := startHB(t, s.h, t.Context()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(12 * time.Second)
		if err := stopHB(t, s.h); err != nil {
			t.Fatalf("Stop() = %v", err)
		}
		if n := len(s.f.log(http.MethodDelete, instPath)); n != 1 {
			t.Errorf("%d DELETEs, want 1", n)
		}
		if _, _, ok := s.f.instance("web-1"); ok {
			t.Error("instance still registered")
		}
		ev := s.log.all()
		last2 := ev[len(ev)-2:]
		if last2[0].Kind != HeartbeatDeregistered || last2[0].Err != nil || last2[1].Kind != HeartbeatStopped || last2[1].Err != nil {
			t.Errorf("events end with %+v, want deregistered and stopped without errors", last2)
		}
		if !isClosed(s.h.Done()) || s.h.Err() != nil {
			t.Errorf("after Stop: done %v, Err %v", isClosed(s.h.Done()), s.h.Err())
		}
		if err := stopHB(t, s.h); err != nil {
			t.Errorf("second Stop() = %v", err)
		}
		if n := len(s.f.log(http.MethodDelete, instPath)); n != 1 {
			t.Errorf("second Stop sent another DELETE (%d)", n)
		}
	})
}

func TestHeartbeaterStopCutsAHungHeartbeatShort(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newHBSetup(t, web1(30), HeartbeaterOptions{})
		s.f.setIntercept(func(w http.ResponseWriter, r *http.Request) bool {
			if r.URL.Path != hbPath {
				return false
			}
			<-r.Context().Done()
			return true
		})
		if err := startHB(t, s.h, t.Context()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(12 * time.Second) // the first heartbeat hangs since ~10 s
		if n := len(s.f.log(http.MethodPost, hbPath)); n != 1 {
			t.Fatalf("%d heartbeats in flight, want 1", n)
		}
		start := time.Now()
		if err := stopHB(t, s.h); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took != 0 {
			t.Errorf("Stop took %v: it waited for the hung heartbeat", took)
		}
		if n := len(s.f.log(http.MethodDelete, instPath)); n != 1 {
			t.Errorf("%d DELETEs, want 1", n)
		}
	})
}

func TestHeartbeaterCancelledContextStillDeregisters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newHBSetup(t, web1(30), HeartbeaterOptions{})
		ctx, cancel := context.WithCancel(t.Context())
		runErr := make(chan error, 1)
		go func() { runErr <- s.h.Run(ctx) }()
		time.Sleep(12 * time.Second)
		cancel()
		if err := recv(t, runErr); err != nil {
			t.Fatalf("Run() = %v, want nil after a clean deregistration", err)
		}
		if n := len(s.f.log(http.MethodDelete, instPath)); n != 1 {
			t.Errorf("%d DELETEs, want 1", n)
		}
		if _, _, ok := s.f.instance("web-1"); ok {
			t.Error("instance still registered")
		}
	})
}

func TestHeartbeaterDeregistrationIsBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newHBSetup(t, web1(30), HeartbeaterOptions{DeregisterTimeout: 2 * time.Second})
		s.f.setIntercept(func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method != http.MethodDelete {
				return false
			}
			<-r.Context().Done() // a server that never answers
			return true
		})
		ctx, cancel := context.WithCancel(t.Context())
		if err := startHB(t, s.h, ctx); err != nil {
			t.Fatal(err)
		}
		cancel()
		start := time.Now()
		waitDone(t, s.h)
		if took := time.Since(start); took != 2*time.Second {
			t.Errorf("deregistration took %v, want the 2 s DeregisterTimeout", took)
		}
		if err := s.h.Err(); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Err() = %v, want the deregistration's deadline", err)
		}
		if ev, ok := s.log.first(HeartbeatDeregistered); !ok || ev.Err == nil {
			t.Errorf("deregistered event %+v (found %v), want one with the error", ev, ok)
		}
	})
}

func TestHeartbeaterRegistration(t *testing.T) {
	tests := []struct {
		name      string
		failures  int    // first registrations refused with status
		status    int    // … this status
		typ       string // … and type
		wantErr   error
		wantTries int
	}{
		{"transient failures are retried", 2, http.StatusServiceUnavailable, api.ErrUnavailable, nil, 3},
		{"rate limits are retried", 1, http.StatusTooManyRequests, api.ErrRateLimited, nil, 2},
		{"a validation failure is final", 1, http.StatusBadRequest, api.ErrValidationFailed, ErrValidation, 1},
		{"forbidden is final", 1, http.StatusForbidden, api.ErrForbidden, ErrForbidden, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newHBSetup(t, web1(30), HeartbeaterOptions{})
				var n atomic.Int32
				s.f.setIntercept(func(w http.ResponseWriter, r *http.Request) bool {
					if r.Method != http.MethodPut || n.Add(1) > int32(tt.failures) {
						return false
					}
					writeError(w, tt.status, tt.typ, "No.")
					return true
				})
				err := startHB(t, s.h, t.Context())
				if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
					t.Fatalf("Start() = %v, want %v", err, tt.wantErr)
				}
				tries := s.f.log(http.MethodPut, instPath)
				if len(tries) != tt.wantTries {
					t.Fatalf("%d registration attempts, want %d", len(tries), tt.wantTries)
				}
				for i := 1; i < len(tries); i++ {
					if gap := tries[i].At.Sub(tries[i-1].At); gap < DefaultMinBackoff/2 {
						t.Errorf("retry after %v, want at least %v", gap, DefaultMinBackoff/2)
					}
				}
				for _, ev := range s.log.all()[:tt.failures] {
					if ev.Kind != HeartbeatRegisterFailed || (tt.wantErr == nil && ev.Retry <= 0) {
						t.Errorf("event %+v, want register_failed with a retry delay", ev)
					}
				}
				if tt.wantErr != nil {
					if !isClosed(s.h.Done()) || !errors.Is(s.h.Err(), tt.wantErr) {
						t.Errorf("after a final failure: done %v, Err %v", isClosed(s.h.Done()), s.h.Err())
					}
					return
				}
				if err := stopHB(t, s.h); err != nil {
					t.Fatal(err)
				}
			})
		})
	}
}

func TestHeartbeaterLifecycle(t *testing.T) {
	t.Run("Run twice", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := newHBSetup(t, web1(30), HeartbeaterOptions{})
			if err := startHB(t, s.h, t.Context()); err != nil {
				t.Fatal(err)
			}
			if err := s.h.Run(t.Context()); !errors.Is(err, ErrAlreadyStarted) {
				t.Errorf("second Run() = %v, want ErrAlreadyStarted", err)
			}
			if err := stopHB(t, s.h); err != nil {
				t.Fatal(err)
			}
		})
	})
	t.Run("Stop before Start", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := newHBSetup(t, web1(30), HeartbeaterOptions{})
			if err := stopHB(t, s.h); err != nil {
				t.Errorf("Stop() = %v", err)
			}
			if err := startHB(t, s.h, t.Context()); !errors.Is(err, ErrStopped) {
				t.Errorf("Start() after Stop = %v, want ErrStopped", err)
			}
			if r := s.f.log("", ""); len(r) != 0 {
				t.Errorf("requests sent: %v", r)
			}
		})
	})
	t.Run("Stop while registering", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := newHBSetup(t, web1(30), HeartbeaterOptions{})
			s.f.setDown(true, false)
			startErr := make(chan error, 1)
			go func() { startErr <- s.h.Start(t.Context()) }()
			time.Sleep(3 * time.Second)
			if err := stopHB(t, s.h); !errors.Is(err, ErrStopped) {
				t.Errorf("Stop() = %v, want ErrStopped (never registered)", err)
			}
			if err := recv(t, startErr); !errors.Is(err, ErrStopped) {
				t.Errorf("Start() = %v, want ErrStopped", err)
			}
			if d := s.f.log(http.MethodDelete, ""); len(d) != 0 {
				t.Errorf("DELETE without a registration: %v", d)
			}
		})
	})
	t.Run("cancel while registering", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := newHBSetup(t, web1(30), HeartbeaterOptions{})
			s.f.setDown(true, false)
			ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
			defer cancel()
			if err := runHB(t, s.h, ctx); !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Run() = %v, want the context's error", err)
			}
		})
	})
}

func TestHeartbeaterAbandonsAHungHeartbeat(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newHBSetup(t, web1(30), HeartbeaterOptions{})
		var once atomic.Bool
		s.f.setIntercept(func(w http.ResponseWriter, r *http.Request) bool {
			if r.URL.Path != hbPath || !once.CompareAndSwap(false, true) {
				return false
			}
			<-r.Context().Done()
			return true
		})
		regAt := time.Now()
		if err := startHB(t, s.h, t.Context()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(25 * time.Second)
		hbs := s.f.log(http.MethodPost, hbPath)
		if len(hbs) < 2 {
			t.Fatalf("heartbeats %v, want a retry after the hung one", hbs)
		}
		if hbs[1].At.Sub(hbs[0].At) < 10*time.Second || !hbs[1].At.Before(regAt.Add(30*time.Second)) {
			t.Errorf("retry at %v after a hang from %v: want after the attempt timeout, before the deadline", hbs[1].At, hbs[0].At)
		}
		if ev, ok := s.log.first(HeartbeatFailed); !ok || !errors.Is(ev.Err, context.DeadlineExceeded) {
			t.Errorf("failure event %+v (found %v), want the attempt's deadline", ev, ok)
		}
		if s.log.count(HeartbeatOK) == 0 || s.log.count(HeartbeatReregistered) != 0 {
			t.Errorf("events %v: want heartbeats to recover without re-registering", s.log.kinds())
		}
		if err := stopHB(t, s.h); err != nil {
			t.Fatal(err)
		}
	})
}

func TestHeartbeaterAdoptsARegistration(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeMuster(t)
		c, _ := newMemClient(t, f)
		reg, err := c.RegisterInstance(t.Context(), "acme", "web", web1(30))
		if err != nil {
			t.Fatal(err)
		}
		log := &eventLog{}
		h := AdoptHeartbeater(c, "acme", "web", reg, HeartbeaterOptions{OnEvent: log.add})
		start := time.Now()
		if err := startHB(t, h, t.Context()); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		hbs := f.log(http.MethodPost, hbPath)
		if len(hbs) != 1 || !hbs[0].At.Equal(start) {
			t.Fatalf("heartbeats %v, want one right away", hbs)
		}
		if n := len(f.log(http.MethodPost, "/v1/services/acme/web/instances")); n != 1 {
			t.Errorf("%d registrations, want only the caller's", n)
		}
		if ks := log.kinds(); !slices.Equal(ks, []HeartbeatEventKind{HeartbeatRegistered, HeartbeatOK}) {
			t.Errorf("events %v, want registered, heartbeat_ok", ks)
		}
		if h.Instance().ID != "web-1" {
			t.Errorf("Instance() = %+v", h.Instance())
		}
		if err := stopHB(t, h); err != nil {
			t.Fatal(err)
		}
	})
}

func TestHeartbeaterStopsOnARefusedHeartbeat(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newHBSetup(t, web1(30), HeartbeaterOptions{})
		s.f.setIntercept(func(w http.ResponseWriter, r *http.Request) bool {
			if r.URL.Path != hbPath {
				return false
			}
			writeError(w, http.StatusForbidden, api.ErrForbidden, "Forbidden.")
			return true
		})
		if err := runHB(t, s.h, t.Context()); !errors.Is(err, ErrForbidden) {
			t.Fatalf("Run() = %v, want forbidden", err)
		}
		if n := len(s.f.log(http.MethodPost, hbPath)); n != 1 {
			t.Errorf("%d heartbeats, want 1: a refusal is not retried", n)
		}
		if n := len(s.f.log(http.MethodDelete, instPath)); n != 1 {
			t.Errorf("%d DELETEs, want 1: the instance is still ours", n)
		}
	})
}

func TestRetryDelay(t *testing.T) {
	tests := []struct {
		name          string
		backoff, left time.Duration
		want          time.Duration
	}{
		{"backoff when plenty of time is left", time.Second, 20 * time.Second, time.Second},
		{"half the time left when the backoff would pass the deadline", 8 * time.Second, 6 * time.Second, 3 * time.Second},
		{"never under the floor", 8 * time.Second, 50 * time.Millisecond, minRetryDelay},
		{"backoff alone past the deadline", 4 * time.Second, -time.Second, 4 * time.Second},
		{"floor on a tiny backoff", time.Millisecond, time.Minute, minRetryDelay},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := retryDelay(tt.backoff, tt.left); got != tt.want {
				t.Errorf("retryDelay(%v, %v) = %v, want %v", tt.backoff, tt.left, got, tt.want)
			}
		})
	}
}

func TestBackoffGrowsToItsCapWithJitter(t *testing.T) {
	b := backoff{initial: 500 * time.Millisecond, max: 4 * time.Second}
	caps := []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second, 4 * time.Second}
	for round := range 50 {
		b.reset()
		for i, c := range caps {
			if d := b.next(); d < c/2 || d > c {
				t.Fatalf("round %d: delay %d = %v, want within [%v, %v]", round, i, d, c/2, c)
			}
		}
	}
	if d := jitter(10*time.Second, 0.1); d < 9*time.Second || d > 11*time.Second {
		t.Errorf("jitter(10s, 10%%) = %v", d)
	}
}

func TestHeartbeatEventKindString(t *testing.T) {
	for k := HeartbeatRegistered; k <= HeartbeatStopped; k++ {
		if s := k.String(); s == "" || s[0] == 'H' {
			t.Errorf("kind %d has no name: %q", int(k), s)
		}
	}
	if s := HeartbeatEventKind(99).String(); s != "HeartbeatEventKind(99)" {
		t.Errorf("unknown kind = %q", s)
	}
}
