package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/muster-registry/muster/api"
	"github.com/muster-registry/muster/internal/lease"
	"github.com/muster-registry/muster/internal/registry"
	"github.com/muster-registry/muster/internal/state"
)

// encodeLikeWriteJSON is what writeJSON writes for v.
func encodeLikeWriteJSON(t *testing.T, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestHeartbeatFastPaths holds the hand-written answers of both heartbeat
// routes to writeJSON's bytes.
func TestHeartbeatFastPaths(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 890_000_000, time.UTC)
	odd := "a\"b\\c\n<>&é\xff"
	zone := time.FixedZone("x", 3600)
	t.Run("heartbeat", func(t *testing.T) {
		for _, tc := range []struct {
			token string
			at    time.Time
		}{
			{lease.NewToken(), at},
			{"t", at.Truncate(time.Second)},
			{odd, at.Add(100 * time.Millisecond).In(zone)},
			{"", time.Time{}},
		} {
			got, ok := appendHeartbeatAnswer(nil, tc.token, tc.at)
			want := encodeLikeWriteJSON(t, api.HeartbeatResponse{Token: tc.token, ExpiresAt: tc.at})
			if !ok || !bytes.Equal(got, want) {
				t.Errorf("ok %v\n got %s\nwant %s", ok, got, want)
			}
		}
		if _, ok := appendHeartbeatAnswer(nil, "t", time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)); ok {
			t.Error("year 10000 encoded")
		}
	})
	t.Run("batch", func(t *testing.T) {
		tok := lease.NewToken()
		notFound := itemError(registry.NotFound("instance %s", "a/b/<c>"))
		for _, results := range [][]api.BatchHeartbeatResult{
			nil,
			{},
			{{Token: tok, ExpiresAt: at}},
			{{Token: tok, ExpiresAt: at}, {Token: tok, ExpiresAt: at}, {Error: notFound}, {Token: tok, ExpiresAt: at.Add(time.Millisecond)}},
			// the same instant in another zone is written differently
			{{Token: tok, ExpiresAt: at}, {Token: odd, ExpiresAt: at.In(zone)}, {Token: tok, ExpiresAt: at}},
			{{Error: itemError(registry.ErrTokenMismatch)}, {}, {ExpiresAt: at}, {Token: tok, Error: notFound}},
		} {
			got, ok := appendBatchAnswer(nil, results)
			want := encodeLikeWriteJSON(t, api.BatchHeartbeatResponse{Results: results})
			if !ok || !bytes.Equal(got, want) {
				t.Errorf("ok %v\n got %s\nwant %s", ok, got, want)
			}
		}
		if _, ok := appendBatchAnswer(nil, []api.BatchHeartbeatResult{{ExpiresAt: time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)}}); ok {
			t.Error("year -1 encoded")
		}
	})
}

// The hand-written readers take the compact bodies SDKs send, and leave
// every other body to the strict decoder.
func TestHeartbeatBodyReaders(t *testing.T) {
	tok := lease.NewToken()
	item := `{"namespace":"ns","service":"svc","id":"i-1","token":"` + tok + `"}`
	cases := []struct {
		name, body string
		fast       bool
	}{
		{"heartbeat", `{"token":"` + tok + `"}`, true},
		{"heartbeat, trailing newline", `{"token":"` + tok + `"}` + "\n", true},
		{"heartbeat, empty token", `{"token":""}`, true},
		{"heartbeat, spaces", `{ "token": "` + tok + `" }`, false},
		{"heartbeat, escape", `{"token":"a\u0062"}`, false},
		{"heartbeat, non-ASCII", `{"token":"é"}`, false},
		{"heartbeat, second field", `{"token":"a","x":1}`, false},
		{"heartbeat, repeated", `{"token":"a","token":"b"}`, false},
		{"heartbeat, quote inside", `{"token":"a"b"}`, false},
		{"heartbeat, trailing data", `{"token":"a"}{"token":"b"}`, false},
		{"heartbeat, short", `{"token":"}`, false},
		{"batch", `{"heartbeats":[` + item + `,` + item + `]}`, true},
		{"batch, empty", `{"heartbeats":[]}`, true},
		{"batch, null", `{"heartbeats":null}`, false},
		{"batch, fields reordered", `{"heartbeats":[{"service":"svc","namespace":"ns","id":"i","token":"t"}]}`, false},
		{"batch, field missing", `{"heartbeats":[{"namespace":"ns","service":"svc","id":"i"}]}`, false},
		{"batch, extra field", `{"heartbeats":[{"namespace":"ns","service":"svc","id":"i","token":"t","x":"y"}]}`, false},
		{"batch, trailing comma", `{"heartbeats":[` + item + `,]}`, false},
		{"batch, unclosed", `{"heartbeats":[` + item, false},
		{"batch, escape", `{"heartbeats":[{"namespace":"n\"s","service":"svc","id":"i","token":"t"}]}`, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if strings.HasPrefix(tc.name, "batch") {
				got, ok := parseBatch([]byte(tc.body), nil)
				if ok != tc.fast {
					t.Fatalf("fast path took it: %v, want %v", ok, tc.fast)
				}
				if ok {
					var want api.BatchHeartbeatRequest
					if _, err := decodeBody([]byte(tc.body), &want); err != nil || len(got) != len(want.Heartbeats) || (len(got) > 0 && !reflect.DeepEqual(got, want.Heartbeats)) {
						t.Fatalf("fast path read %+v; the decoder %+v, %v", got, want.Heartbeats, err)
					}
				}
				return
			}
			got, ok := heartbeatToken([]byte(tc.body))
			if ok != tc.fast {
				t.Fatalf("fast path took it: %v, want %v", ok, tc.fast)
			}
			var want api.HeartbeatRequest
			if _, err := decodeBody([]byte(tc.body), &want); ok && (err != nil || got != want.Token) {
				t.Fatalf("fast path read %q; the decoder %q, %v", got, want.Token, err)
			}
		})
	}
}

// Whatever the fast readers accept, the strict decoder reads the same way.
// The bodies are compact ones, with strings drawn from plain and odd
// characters, then mutated a little: pieces inserted, bytes cut.
func TestHeartbeatBodyReadersAgreeWithTheDecoder(t *testing.T) {
	chars := []string{"a", "Z", "0", "-", ".", " ", `"`, `\`, `\"`, `\u0041`, "é", "\n", "\x00", "<"}
	pieces := []string{`{`, `}`, `[`, `]`, `,`, `:`, `"`, " ", "\n", `null`, `"x":"y"`, `"token":"t"`}
	str := rapid.Custom(func(t *rapid.T) string {
		return strings.Join(rapid.SliceOfN(rapid.SampledFrom(chars), 0, 6).Draw(t, "chars"), "")
	})
	rapid.Check(t, func(t *rapid.T) {
		var body string
		if rapid.Bool().Draw(t, "batch") {
			items := rapid.SliceOfN(rapid.Custom(func(t *rapid.T) string {
				return `{"namespace":"` + str.Draw(t, "ns") + `","service":"` + str.Draw(t, "svc") +
					`","id":"` + str.Draw(t, "id") + `","token":"` + str.Draw(t, "token") + `"}`
			}), 0, 3).Draw(t, "items")
			body = `{"heartbeats":[` + strings.Join(items, ",") + `]}`
		} else {
			body = `{"token":"` + str.Draw(t, "token") + `"}`
		}
		for range rapid.IntRange(0, 2).Draw(t, "mutations") {
			at := rapid.IntRange(0, len(body)).Draw(t, "at")
			if rapid.Bool().Draw(t, "insert") {
				body = body[:at] + rapid.SampledFrom(pieces).Draw(t, "piece") + body[at:]
			} else {
				body = body[:at] + body[min(len(body), at+rapid.IntRange(1, 3).Draw(t, "cut")):]
			}
		}
		b := []byte(body)
		if tok, ok := heartbeatToken(b); ok {
			var want api.HeartbeatRequest
			if _, err := decodeBody(b, &want); err != nil || tok != want.Token {
				t.Fatalf("%s: fast path read %q; the decoder %q, %v", b, tok, want.Token, err)
			}
		}
		if beats, ok := parseBatch(b, nil); ok {
			var want api.BatchHeartbeatRequest
			if _, err := decodeBody(b, &want); err != nil || len(beats) != len(want.Heartbeats) || (len(beats) > 0 && !reflect.DeepEqual(beats, want.Heartbeats)) {
				t.Fatalf("%s: fast path read %+v; the decoder %+v, %v", b, beats, want.Heartbeats, err)
			}
		}
	})
}

// Through the handler, a body in the compact form and the same body spelt
// otherwise get the same answer, and a bad body the decoder's error.
func TestHeartbeatRoutesReadEveryForm(t *testing.T) {
	leases, err := lease.New(lease.Options{})
	if err != nil {
		t.Fatal(err)
	}
	leases.SetLeader(true)
	defer leases.SetLeader(false)
	tokens := map[string]string{}
	for i, id := range []string{"i-1", "i-2"} {
		tokens[id] = lease.NewToken()
		leases.InstanceAdded(&state.Instance{Namespace: "ns", Service: "svc", ID: id, HeartbeatTimeout: 60, RegIndex: uint64(i + 1), Token: tokens[id], RegisteredAt: time.Now()})
	}
	h := New(Config{Store: state.New(0, leases), Leases: leases, Metrics: NewMetrics(nil)})
	post := func(path, body string) (int, []byte) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, strings.NewReader(body)))
		return rec.Code, rec.Body.Bytes()
	}
	beat := func(id, format string) {
		t.Helper()
		code, body := post("/v1/services/ns/svc/instances/"+id+"/heartbeat", fmt.Sprintf(format, tokens[id]))
		var got api.HeartbeatResponse
		if err := json.Unmarshal(body, &got); code != http.StatusOK || err != nil || len(got.Token) != 22 || got.ExpiresAt.IsZero() {
			t.Fatalf("heartbeat %s: %d %s", format, code, body)
		}
		tokens[id] = got.Token
	}
	beat("i-1", `{"token":"%s"}`)
	beat("i-1", ` { "token" : "%s" } `)
	beat("i-1", `{"token":"%s"}`+"\n")

	code, body := post("/v1/services/ns/svc/instances/i-1/heartbeat", `{"token":"`+tokens["i-1"]+`","tokn":"x"}`)
	if code != http.StatusBadRequest || !bytes.Contains(body, []byte(`tokn: unknown field`)) {
		t.Fatalf("unknown field: %d %s", code, body)
	}
	code, body = post("/v1/services/ns/svc/instances/i-1/heartbeat", `{"token":""}`)
	if code != http.StatusBadRequest || !bytes.Contains(body, []byte(api.ErrValidationFailed)) {
		t.Fatalf("empty token: %d %s", code, body)
	}

	batch := func(format string) []api.BatchHeartbeatResult {
		t.Helper()
		code, body := post("/v1/heartbeats", fmt.Sprintf(format, tokens["i-1"], tokens["i-2"]))
		var got api.BatchHeartbeatResponse
		if err := json.Unmarshal(body, &got); code != http.StatusOK || err != nil || len(got.Results) != 3 {
			t.Fatalf("batch %s: %d %s", format, code, body)
		}
		if got.Results[0].Error != nil || got.Results[1].Error != nil || got.Results[2].Error == nil || got.Results[2].Error.Type != api.ErrTokenMismatch {
			t.Fatalf("batch %s: %s", format, body)
		}
		tokens["i-1"], tokens["i-2"] = got.Results[0].Token, got.Results[1].Token
		return got.Results
	}
	batch(`{"heartbeats":[{"namespace":"ns","service":"svc","id":"i-1","token":"%s"},{"namespace":"ns","service":"svc","id":"i-2","token":"%s"},{"namespace":"ns","service":"svc","id":"i-1","token":"spent"}]}`)
	batch(`{"heartbeats": [{"id":"i-1","namespace":"ns","service":"svc","token":"%s"}, {"namespace":"ns","service":"svc","id":"i-2","token":"%s"},{"namespace":"ns","service":"svc","id":"i-1","token":"spent"}]}`)

	// Every heartbeat that reached the lease table is counted by its result.
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for _, want := range []string{`muster_heartbeats_total{result="ok"} 7`, `muster_heartbeats_total{result="token_mismatch"} 2`} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("metrics lack %s:\n%s", want, rec.Body.String())
		}
	}
}
