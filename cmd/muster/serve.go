package main

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/muster-registry/muster/server"
)

func newServeCmd() *cobra.Command {
	var (
		cfg       server.Config
		logLevel  string
		logFormat string
		cpuProf   string
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run a Muster server",
		Long: `Run a Muster server. With no flags it serves the HTTP API on 127.0.0.1:7410,
keeps its data in ./muster-data (made if missing) and its Raft transport on
127.0.0.1:7411. It exits 0 on SIGTERM or SIGINT after draining in-flight requests.`,
		Example: `  muster serve
  muster serve --dev --http-addr 127.0.0.1:8080
  muster serve --data-dir /var/lib/muster --log-format json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(logLevel, logFormat)
			if err != nil {
				return err
			}
			cfg.Logger = log
			if cpuProf != "" {
				stopProf, err := startCPUProfile(cpuProf)
				if err != nil {
					return err
				}
				defer stopProf()
			}
			srv, err := server.New(cfg)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			return srv.Run(ctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.HTTPAddr, "http-addr", "127.0.0.1:7410", "address of the HTTP API")
	f.StringVar(&cfg.RaftAddr, "raft-addr", "127.0.0.1:7411", "address of the Raft transport")
	f.StringVar(&cfg.DataDir, "data-dir", "muster-data", "directory of the log, snapshots and token journal")
	f.StringVar(&cfg.NodeID, "node-id", "", "node id (default: the one recorded in the data directory, else the host name)")
	f.BoolVar(&cfg.Dev, "dev", false, "keep everything in memory, nothing on disk (demos and tests)")
	f.IntVar(&cfg.RetainEvents, "retain-events", 100_000, "how many of the newest events to keep")
	f.Uint64Var(&cfg.SnapshotThreshold, "snapshot-threshold", 8192, "log entries between snapshots")
	f.DurationVar(&cfg.SnapshotInterval, "snapshot-interval", 120*time.Second, "how often to check whether a snapshot is due")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	f.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	f.StringVar(&cpuProf, "cpuprofile", "", "write a CPU profile of the server, from start to exit, to this file")
	return cmd
}

func newLogger(level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level must be debug, info, warn or error, not %q", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	default:
		return nil, fmt.Errorf("--log-format must be text or json, not %q", format)
	}
}
