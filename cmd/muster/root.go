package main

import (
	"github.com/spf13/cobra"
)

// newRootCmd builds the command tree. Each group of subcommands lives in its own file.
func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "muster",
		Short: "Muster is a service registry: revisions, heartbeating instances, events and discovery",
		Long: `Muster is a service registry: revisions, heartbeating instances, events and discovery.

Run a server with "muster serve"; the other commands talk to one at --addr.`,
		Example: `  muster serve
  muster revisions register my-org/my-service 1.2.9 --default
  muster instances register my-org/my-service --id web-1 --heartbeat
  muster policy set my-org/my-service -f policy.json
  muster resolve my-org/my-service --requester billing
  muster events --follow`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
	}
	g := &globals{}
	g.register(root)
	root.AddCommand(newServeCmd(), newRevisionsCmd(g), newInstancesCmd(g), newServicesCmd(g), newPolicyCmd(g), newResolveCmd(g), newEventsCmd(g), newStatusCmd(g), newBenchCmd(g), newSeedCmd())
	return root
}
