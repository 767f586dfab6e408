package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/muster-registry/muster/api"
	"github.com/muster-registry/muster/client"
	"github.com/muster-registry/muster/internal/servertest"
)

// binary is the muster binary built once for the tests that run it as a user would.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "muster-cli-test")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "muster")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		panic("building muster: " + err.Error())
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// run runs the binary against addr and returns stdout, stderr and the exit code.
func run(t *testing.T, addr string, args ...string) (string, string, int) {
	t.Helper()
	return runWithInput(t, addr, "", args...)
}

// runWithInput is run with stdin.
func runWithInput(t *testing.T, addr, stdin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"--addr", addr}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running muster %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestRevisionCommands(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, servertest.Options{})
	if out, errs, code := run(t, srv.URL, "revisions", "register", "my-org/my-service", "1.2.9", "--meta", "commit=abc"); code != 0 || !strings.Contains(out, "1.2.9") {
		t.Fatalf("register: code %d out %q err %q", code, out, errs)
	}
	run(t, srv.URL, "revisions", "register", "my-org/my-service", "1.10.0")
	run(t, srv.URL, "revisions", "register", "my-org/my-service", "2.0.0-rc.1", "--default=false")

	out, _, code := run(t, srv.URL, "revisions", "get", "my-org/my-service", "-o", "json")
	var rev api.Revision
	if code != 0 || json.Unmarshal([]byte(out), &rev) != nil || rev.RevisionTag != "1.10.0" || !rev.IsDefault {
		t.Fatalf("get default: code %d out %q", code, out)
	}
	out, _, _ = run(t, srv.URL, "revisions", "list", "my-org/my-service", "-o", "json")
	var tags []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var r api.Revision
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("list line %q: %v", line, err)
		}
		tags = append(tags, r.RevisionTag)
	}
	if strings.Join(tags, " ") != "2.0.0-rc.1 1.10.0 1.2.9" {
		t.Errorf("list order = %v, want newest semver first", tags)
	}
	if _, errs, code := run(t, srv.URL, "revisions", "delete", "my-org/my-service", "1.10.0"); code != 0 {
		t.Fatalf("delete: %d %s", code, errs)
	}
	out, _, _ = run(t, srv.URL, "revisions", "get", "my-org/my-service", "-o", "json")
	// 2.0.0-rc.1 was registered --default=false, which is remembered: the
	// rule hands the default to the greatest other remaining semver.
	if json.Unmarshal([]byte(out), &rev) != nil || rev.RevisionTag != "1.2.9" {
		t.Errorf("after deleting the default, default = %q, want 1.2.9", out)
	}
}

func TestErrorsAreOneLineOnStderr(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, servertest.Options{})
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"not found", []string{"revisions", "get", "acme/web", "--tag", "9.9.9"}, "not_found"},
		{"validation", []string{"instances", "register", "acme/web", "--heartbeat-timeout", "500"}, "heartbeat_timeout"},
		{"bad service arg", []string{"revisions", "list", "acme"}, "NAMESPACE/NAME"},
		{"bad output", []string{"status", "-o", "yaml"}, "table or json"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, errs, code := run(t, srv.URL, tc.args...)
			if code == 0 {
				t.Fatalf("exit 0, want failure; out %q", out)
			}
			lines := strings.Split(strings.TrimSpace(errs), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "muster: ") || !strings.Contains(lines[0], tc.want) {
				t.Errorf("stderr = %q, want one line mentioning %q", errs, tc.want)
			}
		})
	}
}

// The sidecar keeps its instance alive across several timeouts and
// deregisters on SIGTERM, exiting 0.
func TestSidecarHeartbeatsAndDeregistersOnSIGTERM(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, servertest.Options{})
	c, err := client.New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	side := exec.Command(binary, "--addr", srv.URL, "instances", "register", "acme/web", "--id", "side-1", "--heartbeat-timeout", "3", "--tag", "api", "--heartbeat")
	var errb bytes.Buffer
	side.Stderr = &errb
	if err := side.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = side.Process.Kill() })

	var first api.Instance
	waitFor(t, "the sidecar to register", 10*time.Second, func() bool {
		in, _, err := c.GetInstance(ctx, "acme", "web", "side-1")
		first = in
		return err == nil
	})
	// For three timeouts and more, every look finds the same passing registration.
	var in api.Instance
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); {
		in, _, err = c.GetInstance(ctx, "acme", "web", "side-1")
		if err != nil || in.Status != api.StatusPassing || !in.RegisteredAt.Equal(first.RegisteredAt) {
			t.Fatalf("instance %+v err %v (first registered at %s)", in, err, first.RegisteredAt)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !in.LastHeartbeatAt.After(first.LastHeartbeatAt) {
		t.Errorf("last heartbeat did not move: %s", in.LastHeartbeatAt)
	}
	evs, err := c.Events(ctx, client.EventQuery{Namespace: "acme", Types: []string{api.EventInstanceTimeout}})
	if err != nil || len(evs.Events) != 0 {
		t.Fatalf("timeouts while heartbeating: %+v %v", evs.Events, err)
	}

	if err := side.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := side.Wait(); err != nil {
		t.Fatalf("sidecar exit after SIGTERM: %v; stderr:\n%s", err, errb.String())
	}
	if _, _, err := c.GetInstance(ctx, "acme", "web", "side-1"); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("after SIGTERM the instance is still there: %v", err)
	}
	evs, _ = c.Events(ctx, client.EventQuery{Namespace: "acme", Types: []string{api.EventInstanceRemove}})
	if len(evs.Events) != 1 {
		t.Errorf("instance.remove events = %d, want 1", len(evs.Events))
	}
	if !strings.Contains(errb.String(), "event=registered") || !strings.Contains(errb.String(), "event=deregistered") {
		t.Errorf("sidecar log lacks its state changes:\n%s", errb.String())
	}
}

// A sidecar killed with SIGKILL cannot deregister: its instance times out.
func TestSidecarKilledTimesOut(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, servertest.Options{})
	c, err := client.New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	side := exec.Command(binary, "--addr", srv.URL, "instances", "register", "acme/web", "--id", "doomed", "--heartbeat-timeout", "3", "--heartbeat")
	if err := side.Start(); err != nil {
		t.Fatal(err)
	}
	var reg api.Instance
	waitFor(t, "the sidecar to register", 10*time.Second, func() bool {
		in, _, err := c.GetInstance(ctx, "acme", "web", "doomed")
		reg = in
		return err == nil
	})
	if err := side.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = side.Wait()
	var timeout api.Event
	waitFor(t, "an instance.timeout event", 10*time.Second, func() bool {
		evs, err := c.Events(ctx, client.EventQuery{Namespace: "acme", Types: []string{api.EventInstanceTimeout}})
		if err != nil || len(evs.Events) == 0 {
			return false
		}
		timeout = evs.Events[0]
		return true
	})
	var p api.InstanceRemovedPayload
	if err := json.Unmarshal(timeout.Payload, &p); err != nil || p.ID != "doomed" {
		t.Fatalf("timeout payload %s: %v", timeout.Payload, err)
	}
	if timeout.Time.Before(reg.ExpiresAt) {
		t.Errorf("timeout stamped %s, before the deadline it had at registration %s", timeout.Time, reg.ExpiresAt)
	}
}

func TestEventsFollowStreamsJSONLines(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, servertest.Options{})
	c, err := client.New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	follow := exec.Command(binary, "--addr", srv.URL, "events", "--follow", "--namespace", "acme", "-o", "json")
	stdout, err := follow.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = follow.Process.Kill() })
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	if _, err := c.RegisterRevision(context.Background(), "acme", "web", api.RegisterRevisionRequest{RevisionTag: "1.0.0"}); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	deadline := time.After(10 * time.Second)
	for !got[api.EventRevisionRegister] || !got[api.EventRevisionDefault] {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatal("the stream ended early")
			}
			var ev api.Event
			if err := json.Unmarshal([]byte(line), &ev); err != nil {
				t.Fatalf("line %q is not an event: %v", line, err)
			}
			got[ev.Type] = true
		case <-deadline:
			t.Fatalf("events seen: %v", got)
		}
	}
	if err := follow.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := follow.Wait(); err != nil {
		t.Errorf("events --follow after SIGINT: %v, want exit 0", err)
	}
}

// Every command has --help with an example.
func TestEveryCommandHasAnExample(t *testing.T) {
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Runnable() && c.Example == "" {
			t.Errorf("%q has no example in its help", c.CommandPath())
		}
		for _, sub := range c.Commands() {
			if sub.Name() != "help" && sub.Name() != "completion" {
				walk(sub)
			}
		}
	}
	walk(newRootCmd())
}
