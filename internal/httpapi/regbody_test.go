package httpapi

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"path"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/muster-registry/muster/api"
	"github.com/muster-registry/muster/internal/fsm"
	"github.com/muster-registry/muster/internal/lease"
	"github.com/muster-registry/muster/internal/state"
)

// sameRegistration fails unless readRegistration, fast path and all, gives
// what the strict decoder gives for body: the same request (nil and empty
// slices and maps told apart) or an error with the same answer. It reports
// whether the fast path took the body.
func sameRegistration(t interface {
	Helper()
	Fatalf(string, ...any)
}, body []byte) (fast bool) {
	t.Helper()
	// The body's buffer is pooled: nothing read may refer to it.
	buf := slices.Clone(body)
	fastReq, fast := parseRegistration(buf)
	got, gotErr := readRegistration(buf)
	clear(buf)
	want, wantErr := decodeRegistration(body)
	if fast && (wantErr != nil || !reflect.DeepEqual(fastReq, want)) {
		t.Fatalf("%q: the fast path read %#v; the decoder %#v, %v", body, fastReq, want, wantErr)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%q: read %#v; the decoder %#v", body, got, want)
	}
	if (gotErr == nil) != (wantErr == nil) {
		t.Fatalf("%q: error %v; the decoder's %v", body, gotErr, wantErr)
	}
	if gotErr != nil {
		gs, gb, _ := answer(gotErr)
		ws, wb, _ := answer(wantErr)
		if gs != ws || gb != wb {
			t.Fatalf("%q: answer %d %+v; the decoder's %d %+v", body, gs, gb, ws, wb)
		}
	}
	return fast
}

// The hand-written reader takes the bodies the SDK sends (encoding/json's
// form of api.RegisterInstanceRequest) and leaves every other body to the
// strict decoder.
func TestRegistrationBodyReader(t *testing.T) {
	full := `{"id":"i-1","revision_tag":"1.2.0","address":"10.0.0.1","port":8080,"public_url":"https://a.example/x?y=1",` +
		`"endpoints":["GET /a","b"],"tags":["x","y"],"metadata":{"region":"eu","zone":"eu-1"},"heartbeat_timeout":30}`
	cases := []struct {
		name, body string
		fast       bool
	}{
		{"the bench's body", `{"address":"10.0.0.1","port":8080,"tags":["bench"],"heartbeat_timeout":120}`, true},
		{"every field", full, true},
		{"no field", `{}`, true},
		{"id only", `{"id":"a"}`, true},
		{"trailing newline", full + "\n", true},
		{"empty strings in a list and a map", `{"tags":["",""],"metadata":{"":"","k":""}}`, true},
		{"characters encoding/json would escape, unescaped", `{"address":"<&>","metadata":{"a<":"b&c"}}`, true},
		{"largest count", `{"port":999999999}`, true},

		{"empty body", ``, false},
		{"null", `null`, false},
		{"list", `[]`, false},
		{"leading space", ` {"id":"a"}`, false},
		{"space after a colon", `{"id": "a"}`, false},
		{"space before the end", `{"id":"a" }`, false},
		{"newline between fields", `{"id":"a",` + "\n" + `"port":1}`, false},
		{"escaped quote", `{"id":"a\"b"}`, false},
		{"escaped letter", `{"id":"\u0061"}`, false},
		{"escaped slash", `{"public_url":"http:\/\/a"}`, false},
		{"escaped HTML", `{"address":"\u003c"}`, false},
		{"escape in a key", `{"\u0069d":"a"}`, false},
		{"non-ASCII", `{"address":"é"}`, false},
		{"invalid UTF-8", "{\"address\":\"\xff\"}", false},
		{"control character", "{\"address\":\"a\tb\"}", false},
		{"unknown field", `{"id":"a","weight":1}`, false},
		{"field in another case", `{"Address":"a"}`, false},
		{"repeated field", `{"id":"a","id":"b"}`, false},
		{"fields out of order", `{"port":1,"address":"a"}`, false},
		{"repeated metadata key", `{"metadata":{"a":"1","a":"2"}}`, false},
		{"metadata keys unsorted", `{"metadata":{"b":"1","a":"2"}}`, false},
		{"empty string", `{"id":""}`, false},
		{"empty list", `{"tags":[]}`, false},
		{"empty map", `{"metadata":{}}`, false},
		{"null string", `{"id":null}`, false},
		{"null list", `{"tags":null}`, false},
		{"null in a list", `{"tags":[null]}`, false},
		{"null in a map", `{"metadata":{"a":null}}`, false},
		{"zero", `{"port":0}`, false},
		{"zero timeout", `{"heartbeat_timeout":0}`, false},
		{"negative", `{"port":-1}`, false},
		{"leading zero", `{"port":08080}`, false},
		{"fraction", `{"port":8080.0}`, false},
		{"exponent", `{"port":8e3}`, false},
		{"ten digits", `{"port":1000000000}`, false},
		{"out of int's range", `{"port":99999999999999999999}`, false},
		{"number as a string", `{"port":"8080"}`, false},
		{"string as a number", `{"address":1}`, false},
		{"boolean", `{"address":true}`, false},
		{"list of numbers", `{"tags":[1]}`, false},
		{"object for a list", `{"tags":{"a":"b"}}`, false},
		{"list for an object", `{"metadata":["a"]}`, false},
		{"trailing comma", `{"id":"a",}`, false},
		{"trailing comma in a list", `{"tags":["a",]}`, false},
		{"missing colon", `{"id""a"}`, false},
		{"unclosed", `{"id":"a"`, false},
		{"unclosed string", `{"id":"a}`, false},
		{"trailing data", `{"id":"a"}{}`, false},
		{"trailing data after no field", `{}{}`, false},
		{"trailing garbage", `{"id":"a"}x`, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if fast := sameRegistration(t, []byte(tc.body)); fast != tc.fast {
				t.Fatalf("the fast path took it: %v, want %v", fast, tc.fast)
			}
		})
	}
}

// The characters of generated strings: plain ones, and ones that
// encoding/json escapes or the fast path refuses.
var (
	plainChars = []string{"a", "Z", "0", "-", ".", ":", "/", " ", "~"}
	oddChars   = []string{"a", "<", ">", "&", `"`, `\`, "\n", "\x00", "é", "\xff", "\u2028"}
)

// jsonPlain reports whether encoding/json writes every byte of s as itself.
func jsonPlain(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || strings.IndexByte(`"\<>&`, c) >= 0 {
			return false
		}
	}
	return true
}

// genRegistration draws a registration request, and reports whether the
// SDK's encoding of it is in the form the fast path reads. About half of
// them are drawn to be; in the others, a string or a number may be odd.
func genRegistration(t *rapid.T) (api.RegisterInstanceRequest, bool) {
	odd := rapid.Bool().Draw(t, "odd")
	plain := true
	str := func(label string) string {
		chars := plainChars
		if odd && rapid.Bool().Draw(t, label+" odd") {
			chars = slices.Concat(oddChars, plainChars)
		}
		s := strings.Join(rapid.SliceOfN(rapid.SampledFrom(chars), 0, 5).Draw(t, label), "")
		plain = plain && jsonPlain(s)
		return s
	}
	strs := func(label string) []string {
		n := rapid.IntRange(-1, 3).Draw(t, label)
		if n < 0 {
			return nil
		}
		l := make([]string, n)
		for i := range l {
			l[i] = str(label)
		}
		return l
	}
	count := func(label string) int {
		gen := rapid.OneOf(rapid.SampledFrom([]int{0, 1, 3, 120, 8080, 65535, 65536, 999_999_999}), rapid.IntRange(0, 100_000))
		if odd {
			gen = rapid.OneOf(gen, rapid.SampledFrom([]int{-1, 1_000_000_000, math.MaxInt, math.MinInt}), rapid.IntRange(-100, 100))
		}
		n := gen.Draw(t, label)
		plain = plain && n >= 0 && n < 1_000_000_000
		return n
	}
	req := api.RegisterInstanceRequest{
		ID: str("id"), RevisionTag: str("revision_tag"), Address: str("address"), Port: count("port"),
		PublicURL: str("public_url"), Endpoints: strs("endpoints"), Tags: strs("tags"), HeartbeatTimeout: count("heartbeat_timeout"),
	}
	if n := rapid.IntRange(-1, 3).Draw(t, "metadata"); n >= 0 {
		req.Metadata = map[string]string{}
		for range n {
			req.Metadata[str("key")] = str("value")
		}
	}
	return req, plain
}

// registrationFields splits encoding/json's form of req into its fields,
// `"name":value` each.
func registrationFields(t *rapid.T, req api.RegisterInstanceRequest) []string {
	var out []string
	v := reflect.ValueOf(req)
	for i := range v.NumField() {
		one := reflect.New(v.Type()).Elem()
		one.Field(i).Set(v.Field(i))
		b, err := json.Marshal(one.Interface())
		if err != nil {
			t.Fatal(err)
		}
		if s := string(b[1 : len(b)-1]); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// mutate changes body a little in one of the ways that keep it close to the
// fast path's form: fields reordered or repeated, whitespace, an escape, a
// byte inserted, replaced or cut.
func mutate(t *rapid.T, fields []string) string {
	pieces := []string{`{`, `}`, `[`, `]`, `,`, `:`, `"`, `0`, `-`, `.`, `e`, " ", "\n", `null`, `""`, `"x":"y"`, `"id":"a"`, `"port":1`, `\u0041`, `\"`, "é"}
	if len(fields) > 1 && rapid.Bool().Draw(t, "reorder") {
		i := rapid.IntRange(0, len(fields)-1).Draw(t, "i")
		j := rapid.IntRange(0, len(fields)-1).Draw(t, "j")
		fields[i], fields[j] = fields[j], fields[i]
	}
	if len(fields) > 0 && rapid.IntRange(0, 4).Draw(t, "repeat") == 0 {
		i := rapid.IntRange(0, len(fields)-1).Draw(t, "repeated")
		fields = append(fields, fields[i])
	}
	body := "{" + strings.Join(fields, ",") + "}"
	for range rapid.IntRange(0, 2).Draw(t, "edits") {
		at := rapid.IntRange(0, len(body)).Draw(t, "at")
		switch rapid.IntRange(0, 3).Draw(t, "edit") {
		case 0:
			body = body[:at] + rapid.SampledFrom(pieces).Draw(t, "piece") + body[at:]
		case 1:
			body = body[:at] + body[min(len(body), at+rapid.IntRange(1, 3).Draw(t, "cut")):]
		case 2:
			if at < len(body) {
				body = body[:at] + string(rapid.Byte().Draw(t, "byte")) + body[at+1:]
			}
		case 3:
			// escape a letter as \u00XX: the same string to a decoder
			if at < len(body) && 'a' <= body[at] && body[at] <= 'z' {
				body = body[:at] + fmt.Sprintf(`\u%04x`, body[at]) + body[at+1:]
			}
		}
	}
	return body
}

// For any request the SDK encodes with plain strings and counts, the fast
// path reads its body, as the decoder does. Whatever body it takes, mutated
// ones included, it reads as the decoder does, and the handler answers it
// as it answers the same body through the decoder.
func TestRegistrationBodyAgreesWithTheDecoder(t *testing.T) {
	var fastMutated, slowMutated int
	rapid.Check(t, func(t *rapid.T) {
		req, plain := genRegistration(t)
		body, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		if fast := sameRegistration(t, body); fast != plain {
			t.Fatalf("%s: the fast path took it: %v, want %v", body, fast, plain)
		}
		sameAnswer(t, string(body))

		mutated := mutate(t, registrationFields(t, req))
		if sameRegistration(t, []byte(mutated)) {
			fastMutated++
		} else {
			slowMutated++
		}
		sameAnswer(t, mutated)
	})
	// Neither half of the property may be empty.
	t.Logf("mutated bodies: %d fast, %d decoded", fastMutated, slowMutated)
	if fastMutated == 0 || slowMutated == 0 {
		t.Fatalf("of the mutated bodies, %d took the fast path and %d did not", fastMutated, slowMutated)
	}
}

// sameAnswer fails unless, for a body the fast path takes, both routes of
// registration answer it as they answer the same body preceded by a space,
// which only the decoder reads: the same status, headers and body.
func sameAnswer(t *rapid.T, body string) {
	if _, ok := parseRegistration([]byte(body)); !ok {
		return // the decoder reads it either way
	}
	if _, ok := parseRegistration([]byte(" " + body)); ok {
		t.Fatalf("the fast path took %q", " "+body)
	}
	for _, route := range []struct{ method, path string }{
		{http.MethodPost, "/v1/services/ns/svc/instances"},
		{http.MethodPut, "/v1/services/ns/svc/instances/i-1"},
	} {
		fast := registrationAnswer(t, route.method, route.path, body)
		slow := registrationAnswer(t, route.method, route.path, " "+body)
		if fast != slow {
			t.Fatalf("%s %s %q:\nfast path: %s\n  decoder: %s", route.method, route.path, body, fast, slow)
		}
	}
}

// registrationAnswer is the whole answer of a new server to one
// registration, with what is random in it (the token, and on POST the id
// the server made) replaced by placeholders.
func registrationAnswer(t *rapid.T, method, target, body string) string {
	leases, err := lease.New(lease.Options{})
	if err != nil {
		t.Fatal(err)
	}
	store := state.New(16, leases)
	clock := func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 6_000_000, time.UTC) }
	h := New(Config{Store: store, Leases: leases, Proposer: &applyProposer{f: fsm.New(store)}, Now: clock})
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	r.Header.Set(api.HeaderRequestID, "req-1")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	out := fmt.Sprintf("%d %v %s", rec.Code, rec.Header(), rec.Body)
	if loc := rec.Header().Get("Location"); loc != "" {
		id := path.Base(loc)
		inst, _, err := store.Instance(state.InstanceKey{Namespace: "ns", Service: "svc", ID: id})
		if err != nil {
			t.Fatalf("registered, yet %v", err)
		}
		out = strings.ReplaceAll(out, inst.Token, "<token>")
		if method == http.MethodPost {
			// made up unless the body gave it: the same on both sides then
			out = strings.ReplaceAll(out, id, "<id>")
		}
	}
	return out
}

// FuzzRegistrationBody: whatever body the fast path takes, it reads as the
// strict decoder does, and every body gets the decoder's answer.
func FuzzRegistrationBody(f *testing.F) {
	for _, s := range []string{
		`{}`,
		`{"address":"10.0.0.1","port":8080,"tags":["bench"],"heartbeat_timeout":120}`,
		`{"id":"i-1","revision_tag":"1.2.0","address":"10.0.0.1","port":8080,"public_url":"https://a.example/x",` +
			`"endpoints":["GET /a","b"],"tags":["x","y"],"metadata":{"region":"eu","zone":"eu-1"},"heartbeat_timeout":30}` + "\n",
		`{"metadata":{"a":"1","a":"2"}}`,
		`{"port":0}`,
		`{"heartbeat_timeout":0}`,
		`{"port":08080}`,
		`{"id":"\u0061"}`,
		`{"tags":[]}`,
		`{"id": "a"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		sameRegistration(t, body)
	})
}

// BenchmarkReadRegistration reads the bench's registration body by hand and
// by the strict decoder.
func BenchmarkReadRegistration(b *testing.B) {
	body := []byte(`{"address":"10.0.0.1","port":8080,"tags":["bench"],"heartbeat_timeout":120}`)
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := readRegistration(body); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decoder", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeRegistration(body); err != nil {
				b.Fatal(err)
			}
		}
	})
}
