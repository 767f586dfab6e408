package main

import (
	"github.com/spf13/cobra"

	"github.com/muster-registry/muster/api"
	"github.com/muster-registry/muster/client"
)

func newRevisionsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "revisions", Aliases: []string{"revision", "rev"}, Short: "Register, get, list and delete service revisions"}

	var isDefault bool
	var meta []string
	register := &cobra.Command{
		Use:   "register NS/NAME TAG",
		Short: "Register a revision; the latest semantic version becomes the default unless told otherwise",
		Example: `  muster revisions register my-org/my-service 1.2.9
  muster revisions register my-org/my-service 2.0.0-beta.1 --default=false
  muster revisions register my-org/my-service 1.2.9 --default --meta commit=4f2a9c1`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ns, name, err := splitService(args[0])
			if err != nil {
				return err
			}
			md, err := parseMeta(meta)
			if err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			req := api.RegisterRevisionRequest{RevisionTag: args[1], Metadata: md}
			if cmd.Flags().Changed("default") {
				req.IsDefault = &isDefault
			}
			rev, err := c.RegisterRevision(cmd.Context(), ns, name, req)
			if err != nil {
				return err
			}
			return printRevisions(g.printer(cmd), rev)
		},
	}
	register.Flags().BoolVar(&isDefault, "default", false, "make it the default (--default=false keeps it non-default); without the flag the default rule decides")
	register.Flags().StringArrayVar(&meta, "meta", nil, "metadata KEY=VALUE (repeatable)")

	var sel selectionFlags
	get := &cobra.Command{
		Use:   "get NS/NAME",
		Short: "Get the revision the policy picks for a caller, or the one named by --tag or --revision",
		Example: `  muster revisions get my-org/my-service
  muster revisions get my-org/my-service --tag 1.2.9
  muster revisions get my-org/my-service --revision '^1.2'
  muster revisions get my-org/my-service --requester billing --header 'X-Channel: beta'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ns, name, err := splitService(args[0])
			if err != nil {
				return err
			}
			opts, err := sel.options()
			if err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			rev, _, err := c.GetRevision(cmd.Context(), ns, name, client.GetRevisionOptions(opts))
			if err != nil {
				return err
			}
			return printRevisions(g.printer(cmd), rev)
		},
	}
	sel.register(get)

	list := &cobra.Command{
		Use:     "list NS/NAME",
		Short:   "List a service's revisions, newest semantic version first",
		Example: "  muster revisions list my-org/my-service -o json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ns, name, err := g.service(args[0])
			if err != nil {
				return err
			}
			all, err := allPages(func(marker string) (api.List[api.Revision], error) {
				page, _, err := c.ListRevisions(cmd.Context(), ns, name, client.ListOptions{Marker: marker})
				return page, err
			})
			if err != nil {
				return err
			}
			return printRevisions(g.printer(cmd), all...)
		},
	}

	del := &cobra.Command{
		Use:     "delete NS/NAME TAG",
		Short:   "Delete a revision; a deleted default is replaced by the greatest remaining semantic version",
		Example: "  muster revisions delete my-org/my-service 1.2.9",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ns, name, err := g.service(args[0])
			if err != nil {
				return err
			}
			return c.DeleteRevision(cmd.Context(), ns, name, args[1])
		},
	}
	cmd.AddCommand(register, get, list, del)
	return cmd
}

func printRevisions(p printer, revs ...api.Revision) error {
	if p.json {
		return docs(p, revs)
	}
	rows := make([][]string, 0, len(revs))
	for _, r := range revs {
		def := ""
		if r.IsDefault {
			def = "*"
		}
		rows = append(rows, []string{r.Namespace + "/" + r.Name, r.RevisionTag, def, ts(r.CreatedAt)})
	}
	return p.table([]string{"SERVICE", "REVISION", "DEFAULT", "CREATED"}, rows)
}
