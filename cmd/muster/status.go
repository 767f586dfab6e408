package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newStatusCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "status",
		Short:   "Show the server's node, role, leader, indexes and counts",
		Example: "  muster status\n  muster status -o json --addr http://10.0.0.5:7410",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			st, err := c.Status(cmd.Context())
			if err != nil {
				return err
			}
			p := g.printer(cmd)
			if p.json {
				return p.doc(st)
			}
			return p.table([]string{"NODE", "ROLE", "LEADER", "RAFT INDEX", "EVENTS", "SERVICES", "INSTANCES", "VERSION"},
				[][]string{{st.NodeID, st.Role, st.Leader, fmt.Sprint(st.RaftIndex), fmt.Sprintf("%d..%d", st.OldestEvent, st.EventIndex),
					fmt.Sprint(st.Services), fmt.Sprint(st.Instances), st.Version}})
		},
	}
}
