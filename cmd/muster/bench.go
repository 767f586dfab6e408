package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/muster-registry/muster/api"
	"github.com/muster-registry/muster/internal/bench"
	"github.com/muster-registry/muster/server"
)

func newBenchCmd(g *globals) *cobra.Command {
	var (
		cfg        bench.Config
		cpuProfile string
		memProfile string
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure throughput and latency of a server (or of an embedded one)",
		Long: `Measure throughput and latency of one scenario.

Without --addr on the command line, bench starts a durable server of its own
in a temporary directory (removed afterwards) and measures that; with --addr
it drives the server there, creating everything in --namespace.

Scenarios: ` + strings.Join(bench.Scenarios(), ", ") + `. See docs/benchmarks.md.

The result is a table, or with -o json one JSON object on the last line
(ops_per_s, p50_ms, p99_ms, max_ms, errors and the scenario's own fields).`,
		Example: `  muster bench --scenario heartbeat --instances 1000 --duration 10s
  muster bench --scenario watch --watchers 1000 -o json
  muster bench --scenario lookup --addr http://127.0.0.1:7410 --namespace bench-2
  muster bench --scenario register --cpuprofile register.pprof`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if g.output != "table" && g.output != "json" {
				return fmt.Errorf("-o must be table or json, not %q", g.output)
			}
			if err := checkBenchFlags(cfg); err != nil {
				return err // before an embedded server starts
			}
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			if isTerminal(cmd.ErrOrStderr()) {
				cfg.Progress = cmd.ErrOrStderr()
			}
			cfg.Addr = g.addr
			if !cmd.Flags().Changed("addr") {
				addr, stop, err := embeddedServer(ctx)
				if err != nil {
					return err
				}
				defer stop()
				cfg.Addr = addr
			}
			if cpuProfile != "" {
				stopProf, err := startCPUProfile(cpuProfile)
				if err != nil {
					return err
				}
				defer stopProf()
			}
			res, err := bench.Run(ctx, cfg)
			if err != nil {
				return err
			}
			if memProfile != "" {
				if err := writeHeapProfile(memProfile); err != nil {
					return err
				}
			}
			p := g.printer(cmd)
			if p.json {
				return p.doc(res)
			}
			return p.table(resultTable(res))
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Scenario, "scenario", "heartbeat", "scenario: "+strings.Join(bench.Scenarios(), ", "))
	f.IntVar(&cfg.Concurrency, "concurrency", 64, "closed-loop workers")
	f.DurationVar(&cfg.Duration, "duration", 10*time.Second, "length of the measured phase (expiry: until every instance expired)")
	f.IntVar(&cfg.Instances, "instances", 1000, "instances prepared first (heartbeat, lookup, expiry, batch, mixed)")
	f.IntVar(&cfg.Watchers, "watchers", 100, "event streams of the watch scenario")
	f.IntVar(&cfg.Others, "others", 10_000, "other instances the expiry scenario heartbeats, each once a second, while its wave expires")
	f.StringVar(&cfg.Namespace, "namespace", "bench", "namespace for everything the run creates")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of this process (with the embedded server: of the server too)")
	f.StringVar(&memProfile, "memprofile", "", "write a heap profile at the end of the run")
	return cmd
}

// embeddedServer starts a durable server (not --dev: writes are fsync'd as
// in production) in a temporary directory on free loopback ports.
func embeddedServer(ctx context.Context) (addr string, stop func(), err error) {
	dir, err := os.MkdirTemp("", "muster-bench-")
	if err != nil {
		return "", nil, err
	}
	raftAddr, err := freeAddr()
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	srv, err := server.New(server.Config{HTTPAddr: "127.0.0.1:0", RaftAddr: raftAddr, DataDir: dir, NodeID: "bench"})
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	stop = func() {
		cancel()
		<-done
		os.RemoveAll(dir)
	}
	select {
	case <-srv.Ready():
		return "http://" + srv.Addr(), stop, nil
	case err := <-done:
		os.RemoveAll(dir)
		cancel()
		return "", nil, fmt.Errorf("bench: embedded server: %w", err)
	case <-time.After(30 * time.Second):
		stop()
		return "", nil, errors.New("bench: embedded server not ready after 30s")
	}
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	runtime.GC()
	if err := pprof.WriteHeapProfile(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func resultTable(r bench.Result) ([]string, [][]string) {
	ms := func(v float64) string { return fmt.Sprintf("%.2f", v) }
	header := []string{"SCENARIO", "CONC", "OPS", "OPS/S", "MEAN MS", "P50 MS", "P90 MS", "P99 MS", "MAX MS", "ERRORS"}
	row := []string{r.Scenario, fmt.Sprint(r.Concurrency), fmt.Sprint(r.Ops), fmt.Sprintf("%.0f", r.OpsPerS),
		ms(r.MeanMs), ms(r.P50Ms), ms(r.P90Ms), ms(r.P99Ms), ms(r.MaxMs), fmt.Sprint(r.Errors)}
	extra := func(name, v string) { header, row = append(header, name), append(row, v) }
	switch r.Scenario {
	case "watch":
		extra("WATCHERS", fmt.Sprint(r.Watchers))
		extra("CHANGES", fmt.Sprint(r.Changes))
		extra("CHANGE P99 MS", ms(r.ChangeP99Ms))
	case "expiry":
		extra("EXPIRED", fmt.Sprint(r.Expired))
		extra("WITHIN S", fmt.Sprintf("%.2f", r.ExpiredWithinS))
		extra("HB P99 MS", ms(r.HeartbeatP99Ms))
		extra("WAVE HB P99 MS", ms(r.WaveHeartbeatP99Ms))
		extra("HB ERRORS", fmt.Sprint(r.HeartbeatErrors))
	case "batch":
		extra("BATCH", fmt.Sprint(r.BatchSize))
		extra("RENEWALS/S", fmt.Sprintf("%.0f", r.RenewalsPerS))
	}
	if r.FirstError != "" {
		extra("FIRST ERROR", r.FirstError)
	}
	return header, [][]string{row}
}

// startCPUProfile profiles this process into path until the returned
// function is called.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("starting the CPU profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// checkBenchFlags refuses values the run would otherwise replace by its
// defaults without a word, and an unknown scenario.
func checkBenchFlags(cfg bench.Config) error {
	if !slices.Contains(bench.Scenarios(), cfg.Scenario) {
		return fmt.Errorf("--scenario must be one of %s, not %q", strings.Join(bench.Scenarios(), ", "), cfg.Scenario)
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"concurrency", cfg.Concurrency}, {"instances", cfg.Instances}, {"watchers", cfg.Watchers}, {"others", cfg.Others}} {
		if f.v < 1 {
			return fmt.Errorf("--%s must be at least 1, not %d", f.name, f.v)
		}
	}
	if cfg.Scenario == "lookup" && cfg.Instances > 10*api.MaxListLimit {
		// Each lookup lists one of 10 services in one page.
		return fmt.Errorf("--instances of the lookup scenario must be at most %d (10 services of one page each), not %d", 10*api.MaxListLimit, cfg.Instances)
	}
	if cfg.Duration <= 0 {
		return fmt.Errorf("--duration must be positive, not %s", cfg.Duration)
	}
	if cfg.Namespace == "" {
		return errors.New("--namespace must not be empty")
	}
	return nil
}
