package main

import (
	"context"
	"errors"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/muster-registry/muster/api"
	"github.com/muster-registry/muster/client"
)

func newEventsCmd(g *globals) *cobra.Command {
	var q client.EventQuery
	var follow bool
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Read the events feed; with --follow, stream it until interrupted",
		Example: `  muster events --namespace my-org --type instance.timeout
  muster events --after 120 --follow -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			p := g.printer(cmd)
			if !follow {
				list, err := c.Events(cmd.Context(), q)
				if err != nil {
					return err
				}
				return printEvents(p, list.Events...)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			if !p.json {
				if err := p.table(eventHeader, nil); err != nil {
					return err
				}
			}
			err = c.StreamEvents(ctx, q, func(ev api.Event) error {
				if p.json {
					return p.doc(ev)
				}
				return p.rows(eventRow(ev))
			})
			if errors.Is(err, context.Canceled) || ctx.Err() != nil {
				return nil
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&q.Namespace, "namespace", "", "only events of this namespace")
	f.StringVar(&q.Service, "service", "", "only events of this service")
	f.StringArrayVar(&q.Types, "type", nil, "only events of this type (repeatable)")
	f.Uint64Var(&q.After, "after", 0, "only events after this id")
	f.IntVar(&q.Limit, "limit", 0, "at most this many events (default: the server's, 1000)")
	f.BoolVar(&follow, "follow", false, "stream new events until interrupted")
	return cmd
}

var eventHeader = []string{"ID", "TIME", "TYPE", "SERVICE", "PAYLOAD"}

func eventRow(ev api.Event) []string {
	return []string{strconv.FormatUint(ev.ID, 10), ts(ev.Time), ev.Type, ev.Namespace + "/" + ev.Service, string(ev.Payload)}
}

func printEvents(p printer, evs ...api.Event) error {
	if p.json {
		return docs(p, evs)
	}
	rows := make([][]string, 0, len(evs))
	for _, ev := range evs {
		rows = append(rows, eventRow(ev))
	}
	return p.table(eventHeader, rows)
}
