package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/muster-registry/muster/internal/bench"
	"github.com/muster-registry/muster/internal/servertest"
)

// checkBenchJSON checks the last line of `muster bench -o json`: work was
// done without errors and the percentiles are ordered. No timing thresholds.
func checkBenchJSON(t *testing.T, stdout string) bench.Result {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	var r bench.Result
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &r); err != nil {
		t.Fatalf("last line is not a JSON result: %v\n%s", err, stdout)
	}
	if r.Ops == 0 || r.OpsPerS <= 0 {
		t.Errorf("%s: ops %d, ops_per_s %v: want > 0", r.Scenario, r.Ops, r.OpsPerS)
	}
	if r.Errors != 0 {
		t.Errorf("%s: %d errors (first: %s)", r.Scenario, r.Errors, r.FirstError)
	}
	if !(r.P50Ms <= r.P99Ms && r.P99Ms <= r.MaxMs) {
		t.Errorf("%s: p50 %v, p99 %v, max %v: want p50 <= p99 <= max", r.Scenario, r.P50Ms, r.P99Ms, r.MaxMs)
	}
	return r
}

func TestBenchScenarios(t *testing.T) {
	srv := servertest.Start(t, servertest.Options{})
	for _, sc := range bench.Scenarios() {
		t.Run(sc, func(t *testing.T) {
			t.Parallel()
			args := []string{"bench", "-o", "json", "--scenario", sc, "--namespace", "bench-" + sc,
				"--duration", "400ms", "--concurrency", "4", "--instances", "40", "--watchers", "5", "--others", "20"}
			out, stderr, code := run(t, srv.URL, args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			if stderr != "" {
				t.Errorf("stderr is not a terminal, yet got %q", stderr)
			}
			r := checkBenchJSON(t, out)
			switch sc {
			case "watch":
				if r.Changes == 0 || r.Ops != r.Changes*5 {
					t.Errorf("watch: %d deliveries of %d changes to 5 watchers", r.Ops, r.Changes)
				}
			case "expiry":
				if r.Expired != 40 || r.HeartbeatOps == 0 || r.Others != 20 {
					t.Errorf("expiry: %d of 40 expired, %d heartbeats of %d others meanwhile", r.Expired, r.HeartbeatOps, r.Others)
				}
			case "batch":
				if r.RenewalsPerS <= 0 {
					t.Errorf("batch: renewals_per_s %v", r.RenewalsPerS)
				}
			}
		})
	}
}

// Without --addr, bench runs a durable server of its own in a temporary
// directory and removes the directory afterwards.
func TestBenchEmbeddedServer(t *testing.T) {
	tmp := t.TempDir()
	cmd := exec.Command(binary, "bench", "-o", "json", "--scenario", "register", "--duration", "300ms", "--concurrency", "4")
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp, "MUSTER_ADDR=http://127.0.0.1:1")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("muster bench: %v: %s", err, errb.String())
	}
	checkBenchJSON(t, out.String())
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("the embedded server's data directory was left behind: %v", left)
	}
}

// Bad flags are refused with one line, before any server starts, rather
// than replaced by defaults.
func TestBenchRefusesBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--scenario", "nope"}, `--scenario must be one of register, heartbeat`},
		{[]string{"--concurrency", "-3"}, "--concurrency must be at least 1, not -3"},
		{[]string{"--instances", "0"}, "--instances must be at least 1, not 0"},
		{[]string{"--watchers", "0"}, "--watchers must be at least 1, not 0"},
		{[]string{"--others", "0"}, "--others must be at least 1, not 0"},
		{[]string{"--duration", "-1s"}, "--duration must be positive, not -1s"},
	} {
		// No --addr: these would start an embedded server if the flags passed.
		cmd := exec.Command(binary, append([]string{"bench"}, tc.args...)...)
		var errb bytes.Buffer
		cmd.Stderr = &errb
		err := cmd.Run()
		if err == nil || !strings.Contains(errb.String(), tc.want) || strings.Count(strings.TrimSpace(errb.String()), "\n") != 0 {
			t.Errorf("bench %v: %v, stderr %q; want one line saying %q", tc.args, err, errb.String(), tc.want)
		}
	}
}
