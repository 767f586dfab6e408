package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/muster-registry/muster/api"
	"github.com/muster-registry/muster/client"
)

func newServicesCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "services", Aliases: []string{"service", "svc"}, Short: "List services"}
	var namespace string
	var tags []string
	list := &cobra.Command{
		Use:     "list",
		Short:   "List services with their default revision and instance counts",
		Example: "  muster services list --namespace my-org --tag api",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			opts := client.ServiceListOptions{Namespace: namespace, Tags: tags}
			all, err := allPages(func(marker string) (api.List[api.ServiceSummary], error) {
				opts.Marker = marker
				page, _, err := c.ListServices(cmd.Context(), opts)
				return page, err
			})
			if err != nil {
				return err
			}
			p := g.printer(cmd)
			if p.json {
				return docs(p, all)
			}
			rows := make([][]string, 0, len(all))
			for _, s := range all {
				def := "-"
				if s.DefaultRevision != nil {
					def = s.DefaultRevision.RevisionTag
				}
				rows = append(rows, []string{s.Namespace + "/" + s.Name, def, strconv.Itoa(s.Revisions),
					fmt.Sprintf("%d/%d", s.Passing, s.Instances), orDash(strings.Join(s.Tags, ","))})
			}
			return p.table([]string{"SERVICE", "DEFAULT", "REVISIONS", "PASSING/INSTANCES", "TAGS"}, rows)
		},
	}
	list.Flags().StringVar(&namespace, "namespace", "", "only this namespace")
	list.Flags().StringArrayVar(&tags, "tag", nil, "only services with an instance that has this tag (repeatable; all must match)")
	cmd.AddCommand(list)
	return cmd
}
