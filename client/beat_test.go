package client

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/muster-registry/muster/api"
)

// The hand-written request bodies are encoding/json's bytes.
func TestHeartbeatBodiesAreEncodingJSONs(t *testing.T) {
	odd := []string{"", "tok-EN_0", "a<b>&c", `q"b\s`, "é", "\x01", "\u2028"}
	for _, tok := range odd {
		want, err := json.Marshal(api.HeartbeatRequest{Token: tok})
		if err != nil {
			t.Fatal(err)
		}
		if got := heartbeatBody(tok); !bytes.Equal(got, want) {
			t.Errorf("token %q: got %s, want %s", tok, got, want)
		}
	}
	batches := [][]api.BatchHeartbeat{nil, {}, {{Namespace: "ns", Service: "svc", ID: "i-1", Token: "t"}}}
	for _, s := range odd {
		batches = append(batches, []api.BatchHeartbeat{
			{Namespace: "ns", Service: "svc", ID: "i-1", Token: "t"},
			{Namespace: s, Service: "svc", ID: "i-2", Token: "t"},
			{Namespace: "ns", Service: s, ID: s, Token: s},
		})
	}
	for _, beats := range batches {
		want, err := json.Marshal(api.BatchHeartbeatRequest{Heartbeats: beats})
		if err != nil {
			t.Fatal(err)
		}
		got, ok := batchBody(beats)
		if !ok {
			got, _ = json.Marshal(api.BatchHeartbeatRequest{Heartbeats: beats})
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%+v: got %s, want %s", beats, got, want)
		}
	}
	if _, ok := batchBody([]api.BatchHeartbeat{{Namespace: "ns", Service: "svc", ID: "i", Token: "t"}}); !ok {
		t.Error("a plain batch was left to encoding/json")
	}
}

// Whatever the hand-written readers take, encoding/json reads the same
// way. The answers are encoded by encoding/json as the server writes them
// (HTML unescaped), from tokens and times drawn at random, then mutated a
// little.
func TestAnswerReadersAgreeWithEncodingJSON(t *testing.T) {
	chars := []string{"a", "Z", "0", "-", "_", "<", "&", `"`, `\`, "é", "\n", "\x7f"}
	str := rapid.Custom(func(t *rapid.T) string {
		return strings.Join(rapid.SliceOfN(rapid.SampledFrom(chars), 0, 6).Draw(t, "chars"), "")
	})
	zones := []*time.Location{time.UTC, time.FixedZone("", 3600), time.FixedZone("", -5400)}
	when := rapid.Custom(func(t *rapid.T) time.Time {
		ms := rapid.Int64Range(-1, 4_000_000_000_000).Draw(t, "ms")
		return time.UnixMilli(ms).In(rapid.SampledFrom(zones).Draw(t, "zone"))
	})
	pieces := []string{`{`, `}`, `[`, `]`, `,`, `:`, `"`, " ", `null`, `"error":{"error":"x","type":"y"}`, `"token":"t"`, `Z`, `.5`}
	encode := func(t *rapid.T, v any) []byte {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	rapid.Check(t, func(t *rapid.T) {
		batch := rapid.Bool().Draw(t, "batch")
		var body string
		if batch {
			results := rapid.SliceOfN(rapid.Custom(func(t *rapid.T) api.BatchHeartbeatResult {
				return api.BatchHeartbeatResult{Token: str.Draw(t, "token"), ExpiresAt: when.Draw(t, "at")}
			}), 0, 3).Draw(t, "results")
			body = string(encode(t, api.BatchHeartbeatResponse{Results: results}))
		} else {
			body = string(encode(t, api.HeartbeatResponse{Token: str.Draw(t, "token"), ExpiresAt: when.Draw(t, "at")}))
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
		if batch {
			var got, want api.BatchHeartbeatResponse
			if parseBatchAnswer(b, &got, 0) {
				if err := json.NewDecoder(bytes.NewReader(b)).Decode(&want); err != nil || !reflect.DeepEqual(got, want) {
					t.Fatalf("%s: read %+v; encoding/json %+v, %v", b, got, want, err)
				}
			}
			return
		}
		var got, want api.HeartbeatResponse
		if parseHeartbeatAnswer(b, &got) {
			if err := json.NewDecoder(bytes.NewReader(b)).Decode(&want); err != nil || !reflect.DeepEqual(got, want) {
				t.Fatalf("%s: read %+v; encoding/json %+v, %v", b, got, want, err)
			}
		}
	})
}

// Through the SDK: a server that answers in another spelling, or with an
// error item, gets the same results as one that answers compactly.
func TestHeartbeatCallsReadEveryAnswer(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 890_000_000, time.UTC)
	answers := map[string]string{
		"/v1/services/ns/svc/instances/compact/heartbeat": `{"token":"next","expires_at":"2026-03-04T05:06:07.89Z"}` + "\n",
		"/v1/services/ns/svc/instances/spaced/heartbeat":  `{ "expires_at": "2026-03-04T05:06:07.89Z", "token": "next" }`,
	}
	var batchAnswer string
	var sent []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sent, _ = io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/v1/heartbeats" {
			_, _ = io.WriteString(w, batchAnswer)
			return
		}
		_, _ = io.WriteString(w, answers[r.URL.Path])
	}))
	defer srv.Close()
	c, err := New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, id := range []string{"compact", "spaced"} {
		hb, err := c.Heartbeat(ctx, "ns", "svc", id, "tok")
		if err != nil || hb.Token != "next" || !hb.ExpiresAt.Equal(at) {
			t.Fatalf("%s: %+v, %v", id, hb, err)
		}
		if string(sent) != `{"token":"tok"}` {
			t.Fatalf("sent %s", sent)
		}
	}

	beats := []api.BatchHeartbeat{{Namespace: "ns", Service: "svc", ID: "a", Token: "t1"}, {Namespace: "ns", Service: "svc", ID: "b", Token: "t2"}}
	want := []api.BatchHeartbeatResult{{Token: "n1", ExpiresAt: at}, {Error: &api.Error{Error: "Not found.", Type: api.ErrNotFound}}}
	for _, answer := range []string{
		`{"results":[{"token":"n1","expires_at":"2026-03-04T05:06:07.89Z"},{"error":{"error":"Not found.","type":"not_found"}}]}`,
		"{\n  \"results\": [{\"token\":\"n1\",\"expires_at\":\"2026-03-04T05:06:07.89Z\"},{\"error\":{\"error\":\"Not found.\",\"type\":\"not_found\"}}]\n}",
	} {
		batchAnswer = answer
		got, err := c.HeartbeatBatch(ctx, beats)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("answer %s: %+v, %v", answer, got, err)
		}
		if wantSent, _ := json.Marshal(api.BatchHeartbeatRequest{Heartbeats: beats}); !bytes.Equal(sent, wantSent) {
			t.Fatalf("sent %s, want %s", sent, wantSent)
		}
	}
	batchAnswer = `{"results":[{"token":"n1","expires_at":"2026-03-04T05:06:07.89Z"},{"token":"n2","expires_at":"2026-03-04T05:06:07.89Z"}]}`
	got, err := c.HeartbeatBatch(ctx, beats)
	if err != nil || len(got) != 2 || got[0].Token != "n1" || got[1].Token != "n2" || !got[1].ExpiresAt.Equal(at) {
		t.Fatalf("compact answer: %+v, %v", got, err)
	}
	batchAnswer = `{"results":[{"token":"n1","expires_at":"yesterday"}]}`
	if _, err := c.HeartbeatBatch(ctx, beats); err == nil || !strings.Contains(err.Error(), "decoding answer") {
		t.Fatalf("a bad time: %v", err)
	}
}
