package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/muster-registry/muster/api"
	"github.com/muster-registry/muster/client"
	"github.com/muster-registry/muster/internal/strictjson"
)

func newPolicyCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "policy",
		Aliases: []string{"policies"},
		Short:   "Get, set and delete a service's revision selection policy",
		Long: `A service's policy says which revision a caller gets when it names none: its
routes are tried in order, and the first whose match fits (requester globs,
exact request headers, labels) picks a revision, the highest revision of a
semver constraint, or one side of a weighted split. No fitting route gives the
default revision, which the policy's default rule (latest_semver,
latest_stable or manual) chooses.`,
	}

	get := &cobra.Command{
		Use:     "get NS/NAME",
		Short:   "Show the policy a service follows (the default one when it has none)",
		Example: "  muster policy get my-org/my-service\n  muster policy get my-org/my-service -o json > policy.json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ns, name, err := g.service(args[0])
			if err != nil {
				return err
			}
			p, _, err := c.GetPolicy(cmd.Context(), ns, name)
			if err != nil {
				return err
			}
			return printPolicy(g.printer(cmd), p)
		},
	}

	var file string
	set := &cobra.Command{
		Use:   "set NS/NAME -f FILE|-",
		Short: "Replace a service's policy with the JSON policy in FILE (- reads stdin)",
		Long: `Replace a service's policy with the JSON policy in FILE, or on stdin with -f -.

The file is read strictly: one JSON object whose fields are those of the
policy (default_rule, routes, fallback_to_default); an unknown field is an
error, not ignored. The server then checks the routes against the service's
revisions, and prints the policy as stored.`,
		Example: `  muster policy set my-org/my-service -f policy.json
  cat <<'EOF' | muster policy set my-org/my-service -f -
  {"routes": [
    {"name": "beta", "match": {"headers": {"X-Channel": "beta"}}, "revision": "2.0.0-beta.1"},
    {"name": "ab", "match": {"requesters": ["team-*"]}, "sticky": "requester",
     "split": [{"revision": "1.4.0", "weight": 90}, {"revision": "1.5.0", "weight": 10}]}
  ], "fallback_to_default": true}
  EOF`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ns, name, err := splitService(args[0])
			if err != nil {
				return err
			}
			p, err := readPolicy(cmd, file)
			if err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			stored, err := c.SetPolicy(cmd.Context(), ns, name, p)
			if err != nil {
				return err
			}
			return printPolicy(g.printer(cmd), stored)
		},
	}
	set.Flags().StringVarP(&file, "file", "f", "", "the JSON policy: a file, or - for stdin (required)")
	_ = set.MarkFlagRequired("file")

	del := &cobra.Command{
		Use:     "delete NS/NAME",
		Short:   "Return a service to the default policy (latest_semver, no routes)",
		Example: "  muster policy delete my-org/my-service",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ns, name, err := g.service(args[0])
			if err != nil {
				return err
			}
			return c.DeletePolicy(cmd.Context(), ns, name)
		},
	}
	cmd.AddCommand(get, set, del)
	return cmd
}

// readPolicy reads one JSON policy from file ("-": stdin), refusing
// unknown fields and anything after the object, so that a typo is an error
// rather than a route silently missing its match.
func readPolicy(cmd *cobra.Command, file string) (api.Policy, error) {
	var p api.Policy
	var raw []byte
	var err error
	src := file
	if file == "-" {
		src = "stdin"
		raw, err = io.ReadAll(io.LimitReader(cmd.InOrStdin(), api.MaxBodyBytes+1))
	} else {
		raw, err = os.ReadFile(file)
	}
	if err != nil {
		return p, fmt.Errorf("reading the policy: %w", err)
	}
	if len(raw) > api.MaxBodyBytes {
		return p, fmt.Errorf("%s: the policy is larger than the API's limit of %d bytes", src, api.MaxBodyBytes)
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return p, fmt.Errorf("%s: no policy: the input is empty", src)
	}
	// The server's own strictness: unknown fields with their path, field
	// names in another case, repeated keys.
	if _, err := strictjson.Check(raw, reflect.TypeOf(&p)); err != nil {
		return p, fmt.Errorf("%s: not a policy: %v", src, err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return p, fmt.Errorf("%s: not a policy: %s", src, jsonProblem(raw, err))
	}
	// Decode stops at the end of the first value: anything after it, a
	// second object or a stray brace, is an error too.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return p, fmt.Errorf("%s: not a policy: unexpected data after the JSON object", src)
	}
	return p, nil
}

// jsonProblem words a decoding error with the line it happened on.
func jsonProblem(raw []byte, err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("line %d: %v", lineOf(raw, se.Offset), se)
	case errors.As(err, &te):
		return fmt.Sprintf("line %d: field %q must be a JSON %s, not %s", lineOf(raw, te.Offset), te.Field, kindOf(te.Type.Kind().String()), te.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the JSON ends too early"
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

func lineOf(raw []byte, offset int64) int {
	return bytes.Count(raw[:min(int(offset), len(raw))], []byte("\n")) + 1
}

func kindOf(goKind string) string {
	switch goKind {
	case "slice", "array":
		return "array"
	case "struct", "map", "ptr":
		return "object"
	case "int", "int64", "uint64":
		return "number"
	case "bool":
		return "boolean"
	}
	return goKind
}

func printPolicy(p printer, pol api.Policy) error {
	if p.json {
		return p.doc(pol)
	}
	rule := pol.DefaultRule
	if rule == "" {
		rule = api.RuleLatestSemver
	}
	fmt.Fprintf(p.w, "default rule:         %s\nfallback to default:  %t\n", rule, pol.FallbackToDefault)
	if len(pol.Routes) == 0 {
		_, err := fmt.Fprintln(p.w, "routes:               none (every caller gets the default revision)")
		return err
	}
	fmt.Fprintln(p.w)
	rows := make([][]string, 0, len(pol.Routes))
	for _, r := range pol.Routes {
		rows = append(rows, []string{r.Name, describeMatch(r.Match), describePick(r), orDash(r.Sticky)})
	}
	return p.table([]string{"ROUTE", "MATCH", "PICKS", "STICKY"}, rows)
}

// describeMatch writes a route's match on one line, in a stable order.
func describeMatch(m *api.PolicyMatch) string {
	if m == nil {
		return "everything"
	}
	var parts []string
	if len(m.Requesters) > 0 {
		parts = append(parts, "requester "+strings.Join(m.Requesters, "|"))
	}
	for _, k := range sortedKeys(m.Headers) {
		parts = append(parts, "header "+k+": "+m.Headers[k])
	}
	for _, k := range sortedKeys(m.Labels) {
		parts = append(parts, "label "+k+"="+m.Labels[k])
	}
	if len(parts) == 0 {
		return "everything"
	}
	return strings.Join(parts, ", ")
}

func describePick(r api.PolicyRoute) string {
	switch {
	case r.Revision != "":
		return r.Revision
	case r.Constraint != "":
		return "highest of " + r.Constraint
	}
	parts := make([]string, 0, len(r.Split))
	for _, e := range r.Split {
		parts = append(parts, e.Revision+" ×"+strconv.Itoa(e.Weight))
	}
	return "split " + strings.Join(parts, ", ")
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// selectionFlags are the flags that describe a caller for revision
// selection: resolve and revisions get share them.
type selectionFlags struct {
	tag, revision, requester string
	labels, headers          []string
}

func (f *selectionFlags) register(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&f.tag, "tag", "", "this revision tag, bypassing the policy")
	fs.StringVar(&f.revision, "revision", "", "the highest revision satisfying this semver constraint (e.g. ^1.2, >=2.0.0-0), bypassing the policy")
	fs.StringVar(&f.requester, "requester", "", "the caller's name, which policy routes match")
	fs.StringArrayVar(&f.labels, "label", nil, "a label KEY=VALUE, which policy routes match (repeatable)")
	fs.StringArrayVar(&f.headers, "header", nil, "a request header 'NAME: VALUE', which policy routes match (repeatable)")
}

func (f *selectionFlags) options() (client.ResolveOptions, error) {
	o := client.ResolveOptions{RevisionTag: f.tag, Revision: f.revision, Requester: f.requester}
	if f.tag != "" && f.revision != "" {
		return o, errors.New("give --tag or --revision, not both")
	}
	var err error
	if o.Labels, err = parsePairs("--label", f.labels); err != nil {
		return o, err
	}
	for _, h := range f.headers {
		k, v, ok := strings.Cut(h, ":")
		k = strings.TrimSpace(k)
		if !ok || k == "" || strings.ContainsAny(k, " \t") {
			return o, fmt.Errorf("--header %q must be 'NAME: VALUE', e.g. 'X-Channel: beta'", h)
		}
		if o.Headers == nil {
			o.Headers = http.Header{}
		}
		o.Headers.Add(k, strings.TrimSpace(v))
	}
	return o, nil
}

func newResolveCmd(g *globals) *cobra.Command {
	var sel selectionFlags
	cmd := &cobra.Command{
		Use:   "resolve NS/NAME",
		Short: "Show where a caller's request goes: the revision the policy picks, and its passing instances",
		Long: `Show where a caller's request to a service goes: the revision that the
service's policy picks for the caller described by --requester, --label and
--header (or --tag / --revision, which bypass the policy), the route that
picked it, whether it fell back to the default because the pick had no passing
instance, and the revision's passing instances. With -o json it prints the
server's answer, which also holds the namespace's URL map.`,
		Example: `  muster resolve my-org/my-service
  muster resolve my-org/my-service --requester billing
  muster resolve my-org/my-service --header 'X-Channel: beta' --label env=staging -o json`,
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
			res, _, err := c.Resolve(cmd.Context(), ns, name, opts)
			if err != nil {
				return err
			}
			p := g.printer(cmd)
			if p.json {
				return p.doc(res)
			}
			row := []string{ns + "/" + name, res.Revision.RevisionTag, orDash(res.Route), strconv.FormatBool(res.Fallback), strconv.Itoa(len(res.Instances))}
			if err := p.table([]string{"SERVICE", "REVISION", "ROUTE", "FALLBACK", "INSTANCES"}, [][]string{row}); err != nil {
				return err
			}
			if len(res.Instances) == 0 {
				return nil
			}
			fmt.Fprintln(p.w)
			return printInstances(p, res.Instances...)
		},
	}
	sel.register(cmd)
	return cmd
}
