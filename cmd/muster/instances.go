package main

import (
	"context"
	"errors"
	"fmt"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/muster-registry/muster/api"
	"github.com/muster-registry/muster/client"
)

func newInstancesCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "instances", Aliases: []string{"instance", "inst"}, Short: "Register, list, get and deregister instances"}
	cmd.AddCommand(newInstancesRegisterCmd(g))

	var tags []string
	var revision, status string
	list := &cobra.Command{
		Use:     "list NS/NAME",
		Short:   "List a service's instances (every --tag must match)",
		Example: "  muster instances list my-org/my-service --tag api --status passing",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ns, name, err := g.service(args[0])
			if err != nil {
				return err
			}
			opts := client.InstanceListOptions{Tags: tags, RevisionTag: revision, Status: status}
			all, err := allPages(func(marker string) (api.List[api.Instance], error) {
				opts.Marker = marker
				page, _, err := c.ListInstances(cmd.Context(), ns, name, opts)
				return page, err
			})
			if err != nil {
				return err
			}
			return printInstances(g.printer(cmd), all...)
		},
	}
	list.Flags().StringArrayVar(&tags, "tag", nil, "only instances with this tag (repeatable; all must match)")
	list.Flags().StringVar(&revision, "revision", "", "only instances of this revision tag")
	list.Flags().StringVar(&status, "status", "", "only instances with this status: passing or critical")

	get := &cobra.Command{
		Use:     "get NS/NAME ID",
		Short:   "Get one instance",
		Example: "  muster instances get my-org/my-service web-1",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ns, name, err := g.service(args[0])
			if err != nil {
				return err
			}
			inst, _, err := c.GetInstance(cmd.Context(), ns, name, args[1])
			if err != nil {
				return err
			}
			return printInstances(g.printer(cmd), inst)
		},
	}

	dereg := &cobra.Command{
		Use:     "deregister NS/NAME ID",
		Aliases: []string{"delete"},
		Short:   "Deregister an instance",
		Example: "  muster instances deregister my-org/my-service web-1",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ns, name, err := g.service(args[0])
			if err != nil {
				return err
			}
			return c.DeregisterInstance(cmd.Context(), ns, name, args[1])
		},
	}
	cmd.AddCommand(list, get, dereg)
	return cmd
}

func newInstancesRegisterCmd(g *globals) *cobra.Command {
	var (
		req       api.RegisterInstanceRequest
		meta      []string
		heartbeat bool
	)
	cmd := &cobra.Command{
		Use:   "register NS/NAME",
		Short: "Register an instance; with --heartbeat, keep it alive as a sidecar until interrupted",
		Long: `Register an instance of a service and print it with its first heartbeat token.

With --heartbeat the command stays in the foreground as a sidecar: it keeps the
instance alive (heartbeating every third of the timeout, re-registering if it
expired), logs every change of state on stderr, and on SIGTERM or SIGINT
deregisters the instance and exits 0. It exits 1 if another process takes the
instance id over.`,
		Example: `  muster instances register my-org/my-service --id web-1 --address 10.0.0.5 --port 8080 --tag api
  muster instances register my-org/my-service --id web-1 --endpoint users --public-url https://api.example.com --heartbeat`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ns, name, err := splitService(args[0])
			if err != nil {
				return err
			}
			if req.Metadata, err = parseMeta(meta); err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			p := g.printer(cmd)
			if !heartbeat {
				var reg api.Registration
				if req.ID != "" {
					reg, err = c.PutInstance(cmd.Context(), ns, name, req.ID, req)
				} else {
					reg, err = c.RegisterInstance(cmd.Context(), ns, name, req)
				}
				if err != nil {
					return err
				}
				if p.json {
					return p.doc(reg)
				}
				if err := printInstances(p, reg.Instance); err != nil {
					return err
				}
				_, err = fmt.Fprintf(p.w, "token: %s\n", reg.Token)
				return err
			}
			return runSidecar(cmd, c, ns, name, req)
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.ID, "id", "", "instance id (default: a random one, made by the server, or with --heartbeat by the sidecar); with an id, a restarted sidecar takes it back")
	f.IntVar(&req.HeartbeatTimeout, "heartbeat-timeout", api.DefaultHeartbeatTimeout, "seconds without a heartbeat before the instance expires (3-120)")
	f.StringArrayVar(&req.Tags, "tag", nil, "tag (repeatable)")
	f.StringArrayVar(&meta, "meta", nil, "metadata KEY=VALUE (repeatable)")
	f.StringVar(&req.Address, "address", "", "address the instance listens on")
	f.IntVar(&req.Port, "port", 0, "port the instance listens on")
	f.StringVar(&req.PublicURL, "public-url", "", "public URL that serves the instance's endpoints")
	f.StringArrayVar(&req.Endpoints, "endpoint", nil, "resource the instance serves, for the URL map (repeatable)")
	f.StringVar(&req.RevisionTag, "revision", "", "revision tag the instance runs")
	f.BoolVar(&heartbeat, "heartbeat", false, "stay in the foreground and keep the instance alive until SIGTERM/SIGINT")
	return cmd
}

// runSidecar keeps an instance alive until SIGTERM/SIGINT, then deregisters.
func runSidecar(cmd *cobra.Command, c *client.Client, ns, name string, req api.RegisterInstanceRequest) error {
	ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	errw := cmd.ErrOrStderr()
	p := printer{w: errw}
	hb := client.NewHeartbeater(c, ns, name, req, client.HeartbeaterOptions{
		OnEvent: func(ev client.HeartbeatEvent) {
			if ev.Kind == client.HeartbeatOK {
				return // the steady state is not news
			}
			fields := []string{"event=" + ev.Kind.String(), "instance=" + ns + "/" + name + "/" + ev.Instance.ID}
			if !ev.ExpiresAt.IsZero() {
				fields = append(fields, "expires_at="+ts(ev.ExpiresAt))
			}
			if ev.Retry > 0 {
				fields = append(fields, "retry="+ev.Retry.Round(time.Millisecond).String())
			}
			if ev.Err != nil {
				fields = append(fields, "err="+strconv.Quote(describe(ev.Err)))
			}
			fmt.Fprintf(p.w, "%s %s\n", ts(ev.Time), strings.Join(fields, " "))
		},
	})
	if err := hb.Start(ctx); err != nil {
		if errors.Is(err, context.Canceled) {
			return nil
		}
		return err
	}
	<-hb.Done()
	err := hb.Err()
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, client.ErrStopped) {
		return nil
	}
	return err
}

func printInstances(p printer, insts ...api.Instance) error {
	if p.json {
		return docs(p, insts)
	}
	rows := make([][]string, 0, len(insts))
	for _, in := range insts {
		addr := in.Address
		if in.Port != 0 {
			addr += ":" + strconv.Itoa(in.Port)
		}
		rows = append(rows, []string{in.ID, in.Status, orDash(in.RevisionTag), orDash(addr), orDash(strings.Join(in.Tags, ",")), ts(in.ExpiresAt)})
	}
	return p.table([]string{"ID", "STATUS", "REVISION", "ADDRESS", "TAGS", "EXPIRES"}, rows)
}
