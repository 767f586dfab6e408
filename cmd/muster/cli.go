package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/muster-registry/muster/api"
	"github.com/muster-registry/muster/client"
)

// globals are the flags every client command shares.
type globals struct {
	addr   string
	output string
}

func (g *globals) register(root *cobra.Command) {
	def := os.Getenv("MUSTER_ADDR")
	if def == "" {
		def = "http://127.0.0.1:7410"
	}
	root.PersistentFlags().StringVar(&g.addr, "addr", def, "server address (env MUSTER_ADDR)")
	root.PersistentFlags().StringVarP(&g.output, "output", "o", "table", "output: table (for people) or json (one document per result)")
}

func (g *globals) client() (*client.Client, error) {
	if g.output != "table" && g.output != "json" {
		return nil, fmt.Errorf("-o must be table or json, not %q", g.output)
	}
	return client.New(g.addr, client.WithUserAgent("muster-cli/"+version))
}

// service parses a NS/NAME argument and makes the client: the start of
// every command about one service.
func (g *globals) service(arg string) (*client.Client, string, string, error) {
	ns, name, err := splitService(arg)
	if err != nil {
		return nil, "", "", err
	}
	c, err := g.client()
	return c, ns, name, err
}

// printer writes results as tables or JSON documents.
type printer struct {
	w    io.Writer
	json bool
}

func (g *globals) printer(cmd *cobra.Command) printer {
	return printer{w: cmd.OutOrStdout(), json: g.output == "json"}
}

// doc writes one JSON document on one line.
func (p printer) doc(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(p.w, "%s\n", b)
	return err
}

// allPages follows a list's markers and returns every value: fetch gets the
// page after marker ("" for the first).
func allPages[T any](fetch func(marker string) (api.List[T], error)) ([]T, error) {
	var all []T
	marker := ""
	for {
		page, err := fetch(marker)
		if err != nil {
			return nil, err
		}
		all = append(all, page.Values...)
		if page.Metadata.NextMarker == nil || *page.Metadata.NextMarker == "" {
			return all, nil
		}
		if *page.Metadata.NextMarker == marker {
			return nil, fmt.Errorf("the server answered the same page marker %q twice", marker)
		}
		marker = *page.Metadata.NextMarker
	}
}

// docs writes each value as a JSON document on its own line.
func docs[T any](p printer, values []T) error {
	for _, v := range values {
		if err := p.doc(v); err != nil {
			return err
		}
	}
	return nil
}

// table writes a header and rows, aligned.
func (p printer) table(header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(p.w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// splitService parses NS/NAME.
func splitService(arg string) (ns, name string, err error) {
	ns, name, ok := strings.Cut(arg, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return "", "", fmt.Errorf("%q is not a service: write NAMESPACE/NAME, e.g. my-org/my-service", arg)
	}
	return ns, name, nil
}

// parseMeta parses repeated --meta k=v flags.
func parseMeta(pairs []string) (map[string]string, error) {
	return parsePairs("--meta", pairs)
}

// parsePairs parses the values of a repeated KEY=VALUE flag.
func parsePairs(flag string, pairs []string) (map[string]string, error) {
	if len(pairs) == 0 {
		return nil, nil
	}
	md := make(map[string]string, len(pairs))
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%s %q must be KEY=VALUE", flag, p)
		}
		md[k] = v
	}
	return md, nil
}

// describe turns an error into the one line the user sees: the API's
// message and details without the SDK's prefixes.
func describe(err error) string {
	var ae *client.APIError
	if errors.As(err, &ae) {
		msg := strings.TrimSuffix(ae.Message, ".")
		if ae.Details != "" {
			msg += ": " + ae.Details
		}
		if ae.Type != "" {
			msg += " (" + ae.Type + ")"
		}
		return msg
	}
	return err.Error()
}

func ts(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// rows writes rows aligned on their own, for streams whose header came first.
func (p printer) rows(r ...[]string) error {
	tw := tabwriter.NewWriter(p.w, 0, 4, 2, ' ', 0)
	for _, row := range r {
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	return tw.Flush()
}
