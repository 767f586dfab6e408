package e2e

// The harness: build the binary once, start it as a user would, talk JSON to
// it. Modelled on hashicorp/raft's testing.go: one place that knows how to
// make, stop and inspect a node, reused by every test.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// musterBin is the path of the binary that TestMain builds. It is written
// once, before any test runs, and only read afterwards.
var musterBin string

const (
	// readyTimeout bounds how long a server may take to log "muster ready".
	readyTimeout = 30 * time.Second
	// exitTimeout bounds how long a signalled server may take to exit.
	exitTimeout = 30 * time.Second
)

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	root, err := moduleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	dir, err := os.MkdirTemp("", "muster-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "muster")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "./cmd/muster")
	cmd := exec.Command(goTool(), args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: go %s: %v\n%s", strings.Join(args, " "), err, out)
		return 1
	}
	musterBin = bin
	return m.Run()
}

// moduleRoot finds the directory of go.mod from the working directory (e2e/).
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	if root := os.Getenv("GOROOT"); root != "" {
		return filepath.Join(root, "bin", "go")
	}
	return "go"
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// serverOpts are the flags of one muster serve. Empty addresses get free
// ports; an empty DataDir gets t.TempDir().
type serverOpts struct {
	Dev               bool
	DataDir           string
	HTTPAddr          string
	RaftAddr          string
	RetainEvents      int
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
}

func (o serverOpts) args() []string {
	args := []string{"serve", "--http-addr", o.HTTPAddr, "--raft-addr", o.RaftAddr, "--data-dir", o.DataDir, "--log-format", "json"}
	if o.Dev {
		args = append(args, "--dev")
	}
	if o.RetainEvents > 0 {
		args = append(args, "--retain-events", strconv.Itoa(o.RetainEvents))
	}
	if o.SnapshotInterval > 0 {
		args = append(args, "--snapshot-interval", o.SnapshotInterval.String())
	}
	if o.SnapshotThreshold > 0 {
		args = append(args, "--snapshot-threshold", strconv.FormatUint(o.SnapshotThreshold, 10))
	}
	return args
}

// server is one running muster process.
//
// Concurrency: the HTTP helpers may be called from any goroutine; Stop and
// Kill from the test's goroutine, once.
type server struct {
	t    testing.TB
	Opts serverOpts // the flags it was started with, addresses filled in
	Root string     // http://host:port
	URL  string     // Root + "/v1", the seeds' <base_url>
	Log  *logSink

	cmd    *exec.Cmd
	exited chan struct{} // closed once the process has exited and been reaped
}

var errAddrInUse = errors.New("address already in use")

// startServer starts muster serve and waits for its "muster ready" log line.
// The process is killed when the test ends, if the test has not stopped it.
func startServer(t testing.TB, o serverOpts) *server {
	t.Helper()
	if o.DataDir == "" {
		o.DataDir = t.TempDir()
	}
	for attempt := 1; ; attempt++ {
		s, err := launch(t, o)
		if err == nil {
			return s
		}
		// Another test may have taken a port between freeAddr and the bind.
		if errors.Is(err, errAddrInUse) && attempt < 4 {
			o.HTTPAddr, o.RaftAddr = "", ""
			continue
		}
		t.Fatalf("starting muster: %v", err)
	}
}

func launch(t testing.TB, o serverOpts) (*server, error) {
	t.Helper()
	if o.HTTPAddr == "" {
		o.HTTPAddr = freeAddr(t)
	}
	if o.RaftAddr == "" {
		o.RaftAddr = freeAddr(t)
	}
	s := &server{
		t: t, Opts: o, Root: "http://" + o.HTTPAddr, Log: newLogSink(),
		exited: make(chan struct{}),
	}
	s.URL = s.Root + "/v1"
	s.cmd = exec.Command(musterBin, o.args()...)
	s.cmd.Stdout = s.Log
	s.cmd.Stderr = s.Log
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		_ = s.cmd.Wait() // the exit status is read from ProcessState
		close(s.exited)
	}()
	t.Cleanup(func() {
		if s.running() {
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
		// A race (the binary is built with -race under -race) or a panic
		// fails the test that ran the server, however it ended.
		for _, bad := range []string{"WARNING: DATA RACE", "panic: "} {
			if strings.Contains(s.Log.String(), bad) {
				t.Errorf("muster on %s printed %q", s.Root, bad)
			}
		}
		if t.Failed() {
			t.Logf("log of muster on %s:\n%s", s.Root, s.Log)
		}
	})

	timer := time.NewTimer(readyTimeout)
	defer timer.Stop()
	select {
	case <-s.Log.ready:
		return s, nil
	case <-s.exited:
		if strings.Contains(s.Log.String(), "address already in use") {
			return nil, fmt.Errorf("%w: %s", errAddrInUse, s.Log)
		}
		return nil, fmt.Errorf("muster exited with code %d before it was ready; log:\n%s", s.cmd.ProcessState.ExitCode(), s.Log)
	case <-timer.C:
		_ = s.cmd.Process.Kill()
		<-s.exited
		return nil, fmt.Errorf("muster did not log %q within %s; log:\n%s", "muster ready", readyTimeout, s.Log)
	}
}

func (s *server) running() bool {
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// waitExit waits for the process to exit and returns its exit code (-1 when
// a signal ended it).
func (s *server) waitExit() int {
	s.t.Helper()
	timer := time.NewTimer(exitTimeout)
	defer timer.Stop()
	select {
	case <-s.exited:
		return s.cmd.ProcessState.ExitCode()
	case <-timer.C:
		_ = s.cmd.Process.Kill()
		<-s.exited
		s.t.Fatalf("muster did not exit within %s; log:\n%s", exitTimeout, s.Log)
		return -1
	}
}

// Stop sends SIGTERM and requires a clean exit (code 0).
func (s *server) Stop() {
	s.t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		s.t.Fatalf("SIGTERM: %v", err)
	}
	if code := s.waitExit(); code != 0 {
		s.t.Fatalf("muster exited with code %d after SIGTERM, want 0; log:\n%s", code, s.Log)
	}
}

// Kill sends SIGKILL: no shutdown code runs, as in a crash or an OOM kill.
func (s *server) Kill() {
	s.t.Helper()
	if err := s.cmd.Process.Kill(); err != nil {
		s.t.Fatalf("SIGKILL: %v", err)
	}
	s.waitExit()
}

// restart starts a new process on the same data directory and addresses.
func (s *server) restart(t testing.TB) *server {
	t.Helper()
	if s.running() {
		t.Fatalf("restart of a server that is still running")
	}
	return startServer(t, s.Opts)
}

// runMuster runs the binary to completion (at most 60 s) and returns its exit
// code and combined output.
func runMuster(t testing.TB, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, musterBin, args...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("running muster %s: %v", strings.Join(args, " "), err)
	}
	if ctx.Err() != nil {
		t.Fatalf("muster %s did not finish within 60 s; output:\n%s", strings.Join(args, " "), out)
	}
	return cmd.ProcessState.ExitCode(), string(out)
}

// logSink collects a process's output and notices the "muster ready" line.
//
// Concurrency: Write is called by os/exec's copying goroutine; the readers
// from the test.
type logSink struct {
	ready chan struct{} // closed at the first JSON line with msg "muster ready"

	mu      sync.Mutex
	all     bytes.Buffer
	partial []byte
	isReady bool
}

func newLogSink() *logSink { return &logSink{ready: make(chan struct{})} }

func (l *logSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.all.Write(p)
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		line := l.partial[:i]
		l.partial = l.partial[i+1:]
		var rec struct {
			Msg string `json:"msg"`
		}
		if !l.isReady && json.Unmarshal(line, &rec) == nil && rec.Msg == "muster ready" {
			l.isReady = true
			close(l.ready)
		}
	}
	return len(p), nil
}

func (l *logSink) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.all.String()
}

// ---- HTTP ----

// httpClient is shared by the tests; it is never modified.
var httpClient = &http.Client{Timeout: 30 * time.Second}

// reply is one HTTP answer, read completely.
type reply struct {
	Method, URL string
	Status      int
	Header      http.Header
	Body        []byte
}

func (r reply) String() string {
	return fmt.Sprintf("%s %s → %d %s", r.Method, r.URL, r.Status, bytes.TrimSpace(r.Body))
}

// send sends one request and reads the whole answer. body may be nil, a
// string or []byte (sent as is), an io.Reader (sent chunked, length unknown)
// or any other value (sent as JSON). hdr is pairs of header name and value.
// It does not touch a testing.T, so goroutines may call it.
func send(method, url string, body any, hdr ...string) (reply, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	case io.Reader:
		rd = b
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			return reply{}, fmt.Errorf("encoding request body: %w", err)
		}
		rd = bytes.NewReader(enc)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return reply{}, err
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, fmt.Errorf("%s %s: reading body: %w", method, url, err)
	}
	return reply{Method: method, URL: url, Status: resp.StatusCode, Header: resp.Header, Body: data}, nil
}

// doURL sends one request (see send), failing the test when it cannot be
// sent. Every answer must carry X-Request-Id.
func doURL(t testing.TB, method, url string, body any, hdr ...string) reply {
	t.Helper()
	r, err := send(method, url, body, hdr...)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	if r.Header.Get("X-Request-Id") == "" {
		t.Errorf("%s: no X-Request-Id header", r)
	}
	return r
}

// do sends a request to a path under /v1.
func (s *server) do(t testing.TB, method, path string, body any, hdr ...string) reply {
	t.Helper()
	return doURL(t, method, s.URL+path, body, hdr...)
}

// want fails the test unless the reply has the given status.
func (r reply) want(t testing.TB, status int) reply {
	t.Helper()
	if r.Status != status {
		t.Fatalf("%s; want status %d", r, status)
	}
	return r
}

// decode decodes the reply's JSON body into a T.
func decode[T any](t testing.TB, r reply) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.Body, &v); err != nil {
		t.Fatalf("%s: decoding body as %T: %v", r, v, err)
	}
	return v
}

// index returns the reply's X-Muster-Index, failing when it is missing.
func (r reply) index(t testing.TB) uint64 {
	t.Helper()
	h := r.Header.Get("X-Muster-Index")
	n, err := strconv.ParseUint(h, 10, 64)
	if err != nil {
		t.Fatalf("%s: X-Muster-Index %q: %v", r, h, err)
	}
	return n
}

// wantError checks an error answer: the status, the documented shape
// {"error","type","details","request_id"} with exactly those keys, the type,
// details that contain detailsHas, and request_id equal to X-Request-Id.
func (r reply) wantError(t testing.TB, status int, typ, detailsHas string) apiError {
	t.Helper()
	if r.Status != status {
		t.Fatalf("%s; want status %d %s", r, status, typ)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: Content-Type %q, want application/json", r, ct)
	}
	var raw map[string]any
	if err := json.Unmarshal(r.Body, &raw); err != nil {
		t.Fatalf("%s: error body is not a JSON object: %v", r, err)
	}
	for _, k := range []string{"error", "type", "details", "request_id"} {
		if v, ok := raw[k].(string); !ok || v == "" {
			t.Errorf("%s: error body has no non-empty string %q", r, k)
		}
	}
	if len(raw) != 4 {
		t.Errorf("%s: error body has %d keys, want exactly error, type, details, request_id", r, len(raw))
	}
	e := decode[apiError](t, r)
	if e.Type != typ {
		t.Errorf("%s: type %q, want %q", r, e.Type, typ)
	}
	if !strings.Contains(e.Details, detailsHas) {
		t.Errorf("%s: details %q do not mention %q", r, e.Details, detailsHas)
	}
	if id := r.Header.Get("X-Request-Id"); e.RequestID != id {
		t.Errorf("%s: request_id %q differs from X-Request-Id %q", r, e.RequestID, id)
	}
	return e
}

// ---- wire types, written from DESIGN.md §2 rather than imported from api/,
// so that a change of the wire format shows up here ----

type apiError struct {
	Error     string `json:"error"`
	Type      string `json:"type"`
	Details   string `json:"details"`
	RequestID string `json:"request_id"`
}

type revision struct {
	Namespace   string            `json:"namespace"`
	Name        string            `json:"name"`
	RevisionTag string            `json:"revision_tag"`
	IsDefault   bool              `json:"is_default"`
	CreatedAt   time.Time         `json:"created_at"`
	Metadata    map[string]string `json:"metadata"`
}

type instance struct {
	Namespace        string            `json:"namespace"`
	Service          string            `json:"service"`
	ID               string            `json:"id"`
	RevisionTag      string            `json:"revision_tag"`
	Address          string            `json:"address"`
	Port             int               `json:"port"`
	PublicURL        string            `json:"public_url"`
	Endpoints        []string          `json:"endpoints"`
	Tags             []string          `json:"tags"`
	Metadata         map[string]string `json:"metadata"`
	HeartbeatTimeout int               `json:"heartbeat_timeout"`
	Status           string            `json:"status"`
	RegisteredAt     time.Time         `json:"registered_at"`
	LastHeartbeatAt  time.Time         `json:"last_heartbeat_at"`
	ExpiresAt        time.Time         `json:"expires_at"`
}

// stored returns the instance without the fields that come from its lease
// (status, last heartbeat, deadline): what must survive a restart unchanged.
func (i instance) stored() instance {
	i.Status, i.LastHeartbeatAt, i.ExpiresAt = "", time.Time{}, time.Time{}
	return i
}

type registration struct {
	instance
	Token string `json:"token"`
}

type heartbeatReply struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
}

type listPage[T any] struct {
	Values   []T `json:"values"`
	Metadata struct {
		Count      int     `json:"count"`
		Limit      int     `json:"limit"`
		NextMarker *string `json:"next_marker"`
	} `json:"metadata"`
}

type event struct {
	ID        uint64          `json:"id"`
	Type      string          `json:"type"`
	Namespace string          `json:"namespace"`
	Service   string          `json:"service"`
	Time      time.Time       `json:"time"`
	Payload   json.RawMessage `json:"payload"`
}

type eventList struct {
	Events []event `json:"events"`
	Next   uint64  `json:"next"`
}

type removedPayload struct {
	ID          string    `json:"id"`
	RevisionTag string    `json:"revision_tag"`
	Deadline    time.Time `json:"deadline"`
}

type serviceSummary struct {
	Namespace       string    `json:"namespace"`
	Name            string    `json:"name"`
	DefaultRevision *revision `json:"default_revision"`
	Revisions       int       `json:"revisions"`
	Instances       int       `json:"instances"`
	Passing         int       `json:"passing"`
	Tags            []string  `json:"tags"`
}

type urlMapConflict struct {
	Resource   string   `json:"resource"`
	Chosen     string   `json:"chosen"`
	ChosenFrom string   `json:"chosen_from"`
	Candidates []string `json:"candidates"`
}

type urlMap struct {
	URLMap    map[string]string `json:"url_map"`
	Conflicts []urlMapConflict  `json:"conflicts"`
}

type status struct {
	EventIndex  uint64 `json:"event_index"`
	OldestEvent uint64 `json:"oldest_event"`
	Instances   int    `json:"instances"`
	Revisions   int    `json:"revisions"`
}

// ---- domain helpers ----

func svcPath(ns, name string) string { return "/services/" + ns + "/" + name }

func instPath(ns, name, id string) string { return svcPath(ns, name) + "/instances/" + id }

// postRevision registers a revision and returns the answer (201 or 200).
func (s *server) postRevision(t testing.TB, ns, name string, body any) reply {
	t.Helper()
	r := s.do(t, "POST", svcPath(ns, name), body)
	if r.Status != http.StatusCreated && r.Status != http.StatusOK {
		t.Fatalf("%s; want 201 or 200", r)
	}
	return r
}

// defaultRevision returns the service's default revision (200 required).
func (s *server) defaultRevision(t testing.TB, ns, name string) revision {
	t.Helper()
	return decode[revision](t, s.do(t, "GET", svcPath(ns, name), nil).want(t, http.StatusOK))
}

// revisions lists every revision of a service.
func (s *server) revisions(t testing.TB, ns, name string) []revision {
	t.Helper()
	return decode[listPage[revision]](t, s.do(t, "GET", svcPath(ns, name)+"/revisions?limit=10000", nil).want(t, http.StatusOK)).Values
}

// register POSTs an instance and requires 201.
func (s *server) register(t testing.TB, ns, name string, body any) registration {
	t.Helper()
	return decode[registration](t, s.do(t, "POST", svcPath(ns, name)+"/instances", body).want(t, http.StatusCreated))
}

// heartbeat sends one heartbeat and returns the raw answer.
func (s *server) heartbeat(t testing.TB, ns, name, id, token string) reply {
	t.Helper()
	return s.do(t, "POST", instPath(ns, name, id)+"/heartbeat", map[string]string{"token": token})
}

// beat sends one heartbeat that must succeed and returns the next token.
func (s *server) beat(t testing.TB, ns, name, id, token string) heartbeatReply {
	t.Helper()
	hb := decode[heartbeatReply](t, s.heartbeat(t, ns, name, id, token).want(t, http.StatusOK))
	if hb.Token == "" || hb.Token == token {
		t.Fatalf("heartbeat of %s returned token %q after %q; want a new one", id, hb.Token, token)
	}
	return hb
}

// instances lists a service's instances with a query (without the '?').
func (s *server) instances(t testing.TB, ns, name, query string) []instance {
	t.Helper()
	return decode[listPage[instance]](t, s.do(t, "GET", svcPath(ns, name)+"/instances?"+query, nil).want(t, http.StatusOK)).Values
}

// events polls the feed with a query (without the '?').
func (s *server) events(t testing.TB, query string) eventList {
	t.Helper()
	return decode[eventList](t, s.do(t, "GET", "/events?"+query, nil).want(t, http.StatusOK))
}

// status reads /v1/status.
func (s *server) status(t testing.TB) status {
	t.Helper()
	return decode[status](t, s.do(t, "GET", "/status", nil).want(t, http.StatusOK))
}

// waitUntil blocks until the wall clock has passed at: the tests use it to
// step past a deadline the server announced, never to guess how long
// something takes.
func waitUntil(at time.Time) {
	if d := time.Until(at); d > 0 {
		timer := time.NewTimer(d)
		defer timer.Stop()
		<-timer.C
	}
}

func ids[T any](vs []T, id func(T) string) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = id(v)
	}
	return out
}

func instanceIDs(vs []instance) []string { return ids(vs, func(i instance) string { return i.ID }) }

func revisionTags(vs []revision) []string {
	return ids(vs, func(r revision) string { return r.RevisionTag })
}
