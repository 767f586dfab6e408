package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/muster-registry/muster/api"
	"github.com/muster-registry/muster/client"
	"github.com/muster-registry/muster/internal/servertest"
)

// abPolicy: X-Channel: beta gets the beta; team-* requesters are split
// 50/50 between 1.0.0 and 2.0.0, each team always on its side; env=staging
// gets the highest 2.x, prereleases included.
const abPolicy = `{
  "routes": [
    {"name": "beta", "match": {"headers": {"X-Channel": "beta"}}, "revision": "3.0.0-beta.1"},
    {"name": "ab", "match": {"requesters": ["team-*"]}, "sticky": "requester",
     "split": [{"revision": "1.0.0", "weight": 50}, {"revision": "2.0.0", "weight": 50}]},
    {"name": "staging", "match": {"labels": {"env": "staging"}}, "constraint": ">=2.0.0-0"}
  ]
}`

// seedPolicyService registers acme/web 1.0.0, 2.0.0 (the default) and
// 3.0.0-beta.1, with one instance of each.
func seedPolicyService(t *testing.T, addr string, c *client.Client) {
	t.Helper()
	for _, args := range [][]string{{"1.0.0"}, {"2.0.0"}, {"3.0.0-beta.1", "--default=false"}} {
		if _, errs, code := run(t, addr, append([]string{"revisions", "register", "acme/web"}, args...)...); code != 0 {
			t.Fatalf("registering %v: %s", args, errs)
		}
	}
	for id, tag := range map[string]string{"web-1": "1.0.0", "web-2": "2.0.0", "web-b": "3.0.0-beta.1"} {
		req := api.RegisterInstanceRequest{RevisionTag: tag, Address: "10.0.0.1", Port: 80, HeartbeatTimeout: api.MaxHeartbeatTimeout}
		if _, err := c.PutInstance(context.Background(), "acme", "web", id, req); err != nil {
			t.Fatal(err)
		}
	}
}

// resolveJSON runs muster resolve -o json with args and decodes the answer.
func resolveJSON(t *testing.T, addr string, args ...string) api.Resolution {
	t.Helper()
	out, errs, code := run(t, addr, append([]string{"resolve", "acme/web", "-o", "json"}, args...)...)
	var res api.Resolution
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil {
		t.Fatalf("resolve %v: code %d out %q err %q", args, code, out, errs)
	}
	return res
}

func TestPolicyAndResolveCommands(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, servertest.Options{})
	c, err := client.New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	seedPolicyService(t, srv.URL, c)

	file := filepath.Join(t.TempDir(), "policy.json")
	if err := os.WriteFile(file, []byte(abPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errs, code := run(t, srv.URL, "policy", "set", "acme/web", "-f", file)
	if code != 0 || !strings.Contains(out, "split 1.0.0 ×50, 2.0.0 ×50") || !strings.Contains(out, "header X-Channel: beta") {
		t.Fatalf("policy set: code %d out %q err %q", code, out, errs)
	}
	out, _, _ = run(t, srv.URL, "policy", "get", "acme/web", "-o", "json")
	var got, want api.Policy
	if err := json.Unmarshal([]byte(abPolicy), &want); err != nil {
		t.Fatal(err)
	}
	want.DefaultRule = api.RuleLatestSemver
	if err := json.Unmarshal([]byte(out), &got); err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("policy get = %q (%v), want the file's policy with the default rule", out, err)
	}

	// The table: one row of revision, route, fallback and instance count,
	// then the instances.
	out, errs, code = run(t, srv.URL, "resolve", "acme/web", "--header", "X-Channel: beta")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) < 5 || strings.Join(strings.Fields(lines[1]), " ") != "acme/web 3.0.0-beta.1 beta false 1" ||
		!strings.HasPrefix(lines[4], "web-b ") {
		t.Errorf("resolve --header: code %d err %q out\n%s", code, errs, out)
	}

	tests := []struct {
		name        string
		args        []string
		tag, route  string
		instance    string
		fallingBack bool
	}{
		{"anonymous", nil, "2.0.0", "", "web-2", false},
		{"a requester no route names", []string{"--requester", "billing"}, "2.0.0", "", "web-2", false},
		{"header route", []string{"--requester", "team-a", "--header", "x-channel:beta"}, "3.0.0-beta.1", "beta", "web-b", false},
		{"label route", []string{"--label", "env=staging"}, "3.0.0-beta.1", "staging", "web-b", false},
		{"an unmatched label", []string{"--label", "env=prod"}, "2.0.0", "", "web-2", false},
		{"tag bypasses the policy", []string{"--requester", "team-a", "--tag", "1.0.0"}, "1.0.0", "", "web-1", false},
		{"constraint bypasses the policy", []string{"--header", "X-Channel: beta", "--revision", "^1"}, "1.0.0", "", "web-1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := resolveJSON(t, srv.URL, tt.args...)
			if res.Revision.RevisionTag != tt.tag || res.Route != tt.route || res.Fallback != tt.fallingBack ||
				len(res.Instances) != 1 || res.Instances[0].ID != tt.instance {
				t.Errorf("resolve %v = %s by %q (fallback %t) %v; want %s by %q on %s",
					tt.args, res.Revision.RevisionTag, res.Route, res.Fallback, res.Instances, tt.tag, tt.route, tt.instance)
			}
		})
	}

	// The split is sticky: each team gets what the server gives it, every
	// time, and the teams are not all on one side.
	sides := map[string]bool{}
	for _, team := range []string{"team-a", "team-b", "team-c", "team-d", "team-e", "team-f"} {
		res := resolveJSON(t, srv.URL, "--requester", team)
		again, _, err := c.Resolve(ctx, "acme", "web", client.ResolveOptions{Requester: team})
		if err != nil || res.Route != "ab" || res.Revision.RevisionTag != again.Revision.RevisionTag {
			t.Errorf("%s: resolve gives %s by %q, the SDK %s (%v); want the same, by ab", team, res.Revision.RevisionTag, res.Route, again.Revision.RevisionTag, err)
		}
		sides[res.Revision.RevisionTag] = true
		out, _, _ := run(t, srv.URL, "revisions", "get", "acme/web", "--requester", team, "-o", "json")
		var rev api.Revision
		if json.Unmarshal([]byte(out), &rev) != nil || rev.RevisionTag != res.Revision.RevisionTag {
			t.Errorf("%s: revisions get = %q, want %s as resolve says", team, out, res.Revision.RevisionTag)
		}
	}
	if len(sides) != 2 {
		t.Errorf("the teams are on %v, want both sides of the split", sides)
	}
	out, _, _ = run(t, srv.URL, "revisions", "get", "acme/web", "--revision", "^1", "-o", "json")
	var rev api.Revision
	if json.Unmarshal([]byte(out), &rev) != nil || rev.RevisionTag != "1.0.0" {
		t.Errorf("revisions get --revision ^1 = %q, want 1.0.0", out)
	}

	// From stdin: billing is pinned to 1.0.0.
	pin := `{"routes": [{"name": "pin", "match": {"requesters": ["billing"]}, "revision": "1.0.0"}]}`
	if out, errs, code := runWithInput(t, srv.URL, pin, "policy", "set", "acme/web", "-f", "-", "-o", "json"); code != 0 || !strings.Contains(out, `"pin"`) {
		t.Fatalf("policy set -f -: code %d out %q err %q", code, out, errs)
	}
	if res := resolveJSON(t, srv.URL, "--requester", "billing"); res.Revision.RevisionTag != "1.0.0" || res.Route != "pin" {
		t.Errorf("billing after the stdin policy: %s by %q, want 1.0.0 by pin", res.Revision.RevisionTag, res.Route)
	}

	if _, errs, code := run(t, srv.URL, "policy", "delete", "acme/web"); code != 0 {
		t.Fatalf("policy delete: %d %s", code, errs)
	}
	if res := resolveJSON(t, srv.URL, "--requester", "billing"); res.Revision.RevisionTag != "2.0.0" || res.Route != "" {
		t.Errorf("billing after the delete: %s by %q, want the default 2.0.0", res.Revision.RevisionTag, res.Route)
	}
	out, _, _ = run(t, srv.URL, "policy", "get", "acme/web")
	if !strings.Contains(out, "latest_semver") || !strings.Contains(out, "routes:               none") {
		t.Errorf("policy get after the delete:\n%s", out)
	}
}

func TestBadPolicyIsOneLineOnStderr(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, servertest.Options{})
	c, err := client.New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	seedPolicyService(t, srv.URL, c)
	dir := t.TempDir()
	cases := []struct {
		name   string
		policy string // written to a file, or given on stdin when stdin is set
		stdin  bool
		args   []string // instead of policy set with the policy
		want   string
	}{
		{"unknown field", `{"routes": [{"name": "x", "revision": "1.0.0", "weigth": 3}]}`, false, nil, `routes[0].weigth: unknown field`},
		{"unknown field on stdin", `{"rules": []}`, true, nil, `stdin: not a policy: rules: unknown field`},
		{"field name in another case", `{"Routes": []}`, false, nil, `Routes: unknown field (did you mean "routes"?`},
		{"repeated key", `{"default_rule": "manual", "default_rule": "latest_semver"}`, false, nil, "default_rule: is given more than once"},
		{"unknown revision", `{"routes": [{"name": "x", "revision": "9.9.9"}]}`, false, nil, "routes[0].revision"},
		{"two ways to pick", `{"routes": [{"name": "x", "revision": "1.0.0", "constraint": "^1"}]}`, false, nil, "exactly one of revision, constraint and split"},
		{"weights of zero", `{"routes": [{"name": "x", "split": [{"revision": "1.0.0", "weight": 0}]}]}`, false, nil, "add up to 0"},
		{"a weight as a string", "{\"routes\": [\n{\"name\": \"x\", \"split\": [{\"revision\": \"1.0.0\", \"weight\": \"5\"}]}]}", false, nil, `line 2: field "routes.split.weight" must be a JSON number`},
		{"bad JSON", "{\"routes\": [\n{\"name\": \"x\",, }]}", false, nil, "line 2: invalid character"},
		{"two documents", `{"routes": []} {"routes": []}`, false, nil, "unexpected data after the JSON object"},
		{"empty", "  \n", false, nil, "the input is empty"},
		{"cut short", `{"routes": [`, true, nil, "ends too early"},
		{"no such file", "", false, []string{"policy", "set", "acme/web", "-f", filepath.Join(dir, "missing.json")}, "no such file"},
		{"no file flag", "", false, []string{"policy", "set", "acme/web"}, `"file" not set`},
		{"bad header flag", "", false, []string{"resolve", "acme/web", "--header", "X-Channel=beta"}, "'NAME: VALUE'"},
		{"bad label flag", "", false, []string{"resolve", "acme/web", "--label", "env"}, "--label"},
		{"tag and constraint", "", false, []string{"revisions", "get", "acme/web", "--tag", "1.0.0", "--revision", "^1"}, "not both"},
		{"bad constraint", "", false, []string{"resolve", "acme/web", "--revision", "one"}, "not a semver constraint"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args, stdin := tc.args, ""
			switch {
			case args != nil:
			case tc.stdin:
				args, stdin = []string{"policy", "set", "acme/web", "-f", "-"}, tc.policy
			default:
				file := filepath.Join(dir, "policy"+string(rune('a'+i))+".json")
				if err := os.WriteFile(file, []byte(tc.policy), 0o600); err != nil {
					t.Fatal(err)
				}
				args = []string{"policy", "set", "acme/web", "-f", file}
			}
			out, errs, code := runWithInput(t, srv.URL, stdin, args...)
			if code == 0 {
				t.Fatalf("exit 0, want failure; out %q", out)
			}
			lines := strings.Split(strings.TrimSpace(errs), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "muster: ") || !strings.Contains(lines[0], tc.want) {
				t.Errorf("stderr = %q, want one line mentioning %q", errs, tc.want)
			}
		})
	}
	// None of them changed the policy.
	p, _, err := c.GetPolicy(context.Background(), "acme", "web")
	if err != nil || len(p.Routes) != 0 {
		t.Errorf("policy after the failures: %+v, %v; want the default one", p, err)
	}
}
