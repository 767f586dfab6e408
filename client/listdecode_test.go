package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/muster-registry/muster/api"
	"github.com/muster-registry/muster/internal/state"
)

// The server's hand-written encoder writes the bytes encoding/json writes
// with HTML escaping off (internal/httpapi holds it to that), so these
// tests make server-shaped bodies the same way.
// tb is what these helpers need of *testing.T, *testing.F and *rapid.T.
type tb interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

// encodeList is a list as the server writes it (encoding/json, HTML
// characters not escaped).
func encodeList(t tb, l api.List[api.Instance]) string { return encodeCompact(t, l) }

// encodeCompact encodes v as the server's writeJSON does.
func encodeCompact(t tb, v any) string {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// slowDecode is what the SDK did before the fast path, and what it falls
// back to.
func slowDecode(body string) (api.List[api.Instance], error) {
	var l api.List[api.Instance]
	err := json.NewDecoder(strings.NewReader(body)).Decode(&l)
	return l, err
}

// checkSame holds the fast path to encoding/json on body: when the fast
// path answers, encoding/json must accept the body and decode the same
// value. It reports whether the fast path answered.
func checkSame(t tb, body string) bool {
	t.Helper()
	return agreesWithJSON(t, body, decodeInstanceList)
}

// agreesWithJSON holds a fast decoder to encoding/json on body, as
// checkSame describes, for any answer type.
func agreesWithJSON[T any](t tb, body string, fast func([]byte) (T, bool)) bool {
	t.Helper()
	buf := []byte(body)
	got, ok := fast(buf)
	// The buffer is reused for the next answer: nothing decoded may
	// refer to it.
	for i := range buf {
		buf[i] = '#'
	}
	var want T
	err := json.NewDecoder(strings.NewReader(body)).Decode(&want)
	if !ok {
		return false
	}
	if err != nil {
		t.Fatalf("fast path accepted what encoding/json refuses (%v):\n%q", err, body)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("fast path differs from encoding/json on\n%q\n fast %#v\n want %#v", body, got, want)
	}
	return true
}

func sampleList() api.List[api.Instance] {
	at := time.Date(2026, 3, 4, 5, 6, 7, 890_000_000, time.UTC)
	next := "aS0wMDAwMg"
	return api.List[api.Instance]{
		Values: []api.Instance{
			{
				Namespace: "prod", Service: "billing", ID: "i-1", RevisionTag: "1.2.0", Address: "10.0.0.1", Port: 8080,
				PublicURL: "https://x.example/a?b=1&c=<2>", Endpoints: []string{"/a", "/b"}, Tags: []string{}, Metadata: map[string]string{"k": "v", "é": "ü"},
				HeartbeatTimeout: 30, Status: api.StatusPassing, RegisteredAt: at, LastHeartbeatAt: at.Add(time.Second), ExpiresAt: at.Add(31 * time.Second),
			},
			{ID: "i-2", Port: -7, Tags: []string{"a", "b", "c"}, RegisteredAt: at.Add(123 * time.Nanosecond)},
		},
		Metadata: api.ListMetadata{Count: 2, Limit: 1000, NextMarker: &next},
	}
}

// TestDecodeInstanceList: bodies the fast path must take, and bodies it
// must leave to encoding/json (which then gives the same value, or the
// same error, as before).
func TestDecodeInstanceList(t *testing.T) {
	plain := encodeList(t, sampleList())
	is64 := strconv.IntSize == 64 // an int holds any int64
	cases := []struct {
		name string
		body string
		fast bool // the fast path must answer
	}{
		{"server shape", plain, true},
		{"nil values, no marker", encodeList(t, api.List[api.Instance]{Metadata: api.ListMetadata{Limit: 5}}), true},
		{"empty values", encodeList(t, api.List[api.Instance]{Values: []api.Instance{}}), true},
		{"no trailing newline", strings.TrimSuffix(plain, "\n"), true},
		{"escaped string", strings.Replace(plain, `"i-1"`, `"i\u002d1"`, 1), false},
		{"whitespace", strings.Replace(plain, `"id":`, `"id": `, 1), false},
		{"reordered fields", strings.Replace(plain, `"namespace":"prod","service":"billing"`, `"service":"billing","namespace":"prod"`, 1), false},
		{"unknown field", strings.Replace(plain, `{"namespace":"prod"`, `{"x":1,"namespace":"prod"`, 1), false},
		{"other case of a key", strings.Replace(plain, `"port":8080`, `"Port":8080`, 1), false},
		{"float port", strings.Replace(plain, `"port":8080`, `"port":8080.0`, 1), false},
		{"huge port", strings.Replace(plain, `"port":8080`, `"port":99999999999999999999`, 1), false},
		{"largest port", strings.Replace(plain, `"port":8080`, `"port":9223372036854775807`, 1), is64},
		{"smallest port", strings.Replace(plain, `"port":8080`, `"port":-9223372036854775808`, 1), is64},
		{"19-digit port", strings.Replace(plain, `"port":8080`, `"port":1000000000000000000`, 1), is64},
		{"port past int64", strings.Replace(plain, `"port":8080`, `"port":9223372036854775808`, 1), false},
		{"port past int64, negative", strings.Replace(plain, `"port":8080`, `"port":-9223372036854775809`, 1), false},
		{"leading zero", strings.Replace(plain, `"port":8080`, `"port":08080`, 1), false},
		{"time with offset", strings.Replace(plain, `"2026-03-04T05:06:07.89Z"`, `"2026-03-04T06:06:07.89+01:00"`, 1), false},
		{"day out of range", strings.Replace(plain, `"2026-03-04T05:06:07.89Z"`, `"2026-02-30T05:06:07.89Z"`, 1), false},
		{"ten fraction digits", strings.Replace(plain, `"2026-03-04T05:06:07.89Z"`, `"2026-03-04T05:06:07.8900000000Z"`, 1), false},
		{"invalid UTF-8", strings.Replace(plain, `"i-1"`, "\"i-\xff\"", 1), false},
		{"control character", strings.Replace(plain, `"i-1"`, "\"i-\x01\"", 1), false},
		{"null string", strings.Replace(plain, `"address":"10.0.0.1"`, `"address":null`, 1), false},
		{"trailing garbage", plain + "xyz", false},
		{"truncated", plain[:len(plain)/2], false},
		{"empty", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := checkSame(t, tc.body); tc.fast && !got {
				t.Fatalf("fast path refused the server's shape:\n%s", tc.body)
			} else if !tc.fast && got {
				t.Fatalf("fast path took a body it should leave to encoding/json:\n%s", tc.body)
			}
		})
	}
}

// The values share a few backing arrays: an append to one instance's tags
// must not change another's.
func TestDecodeInstanceListSlicesAreCapped(t *testing.T) {
	l, ok := decodeInstanceList([]byte(encodeList(t, sampleList())))
	if !ok {
		t.Fatal("fast path refused the server's shape")
	}
	_ = append(l.Values[0].Endpoints, "x")
	if got := l.Values[1].Tags; !reflect.DeepEqual(got, []string{"a", "b", "c"}) {
		t.Fatalf("the next instance's tags after an append to endpoints = %q", got)
	}
}

// Many tags over many instances cross the backing arrays' boundaries.
func TestDecodeInstanceListManyTags(t *testing.T) {
	var l api.List[api.Instance]
	for i := range 50 {
		tags := make([]string, i%9)
		for j := range tags {
			tags[j] = fmt.Sprintf("t%d-%d", i, j)
		}
		l.Values = append(l.Values, api.Instance{ID: fmt.Sprint(i), Tags: tags, Endpoints: tags[:len(tags)/2]})
	}
	if !checkSame(t, encodeList(t, l)) {
		t.Fatal("fast path refused the server's shape")
	}
}

// genString draws strings of the kinds the server sends: mostly plain
// ASCII, sometimes with characters that need escaping or are not ASCII.
func genString(t *rapid.T, label string) string {
	return rapid.OneOf(
		rapid.StringMatching(`[a-z0-9._:/-]{0,12}`),
		rapid.StringMatching(`[a-z0-9._:/-]{0,12}`),
		rapid.String(),
	).Draw(t, label)
}

func genStrings(t *rapid.T, label string) []string {
	if rapid.IntRange(0, 4).Draw(t, label+" nil") == 0 {
		return nil
	}
	n := rapid.IntRange(0, 5).Draw(t, label+" len")
	out := make([]string, n)
	for i := range out {
		out[i] = genString(t, label)
	}
	return out
}

func genTime(t *rapid.T, label string) time.Time {
	sec := rapid.Int64Range(-62135596800, 253402300799).Draw(t, label+" s") // years 1 to 9999
	nsec := rapid.OneOf(rapid.Just(int64(0)), rapid.Int64Range(0, 999)).Draw(t, label+" ns")
	nsec *= rapid.SampledFrom([]int64{1, 1_000, 1_000_000}).Draw(t, label+" unit")
	return time.Unix(sec, nsec).UTC()
}

func genInstance(t *rapid.T) api.Instance {
	v := api.Instance{
		Namespace: genString(t, "ns"), Service: genString(t, "svc"), ID: genString(t, "id"),
		RevisionTag: genString(t, "rev"), Address: genString(t, "addr"), Port: rapid.Int().Draw(t, "port"),
		PublicURL: genString(t, "url"), Endpoints: genStrings(t, "endpoints"), Tags: genStrings(t, "tags"),
		HeartbeatTimeout: rapid.IntRange(-200, 200).Draw(t, "timeout"), Status: genString(t, "status"),
		RegisteredAt: genTime(t, "reg"), LastHeartbeatAt: genTime(t, "last"), ExpiresAt: genTime(t, "exp"),
	}
	if rapid.IntRange(0, 4).Draw(t, "metadata nil") > 0 {
		v.Metadata = map[string]string{}
		for range rapid.IntRange(0, 4).Draw(t, "metadata len") {
			v.Metadata[genString(t, "key")] = genString(t, "value")
		}
	}
	return v
}

// isPlain reports whether every string of l is printable ASCII without
// '"' or '\', which the server writes without escapes.
func isPlain(l api.List[api.Instance]) bool {
	var buf []string
	for _, v := range l.Values {
		buf = append(buf[:0], v.Namespace, v.Service, v.ID, v.RevisionTag, v.Address, v.PublicURL, v.Status)
		buf = append(buf, v.Endpoints...)
		buf = append(buf, v.Tags...)
		for k, m := range v.Metadata {
			buf = append(buf, k, m)
		}
		for _, s := range buf {
			for i := 0; i < len(s); i++ {
				if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
					return false
				}
			}
		}
	}
	return true
}

// The fast path equals encoding/json on every server-shaped list, and
// takes every one whose strings need no escape.
func TestDecodeInstanceListProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var l api.List[api.Instance]
		if rapid.Bool().Draw(t, "values") {
			l.Values = rapid.SliceOfN(rapid.Custom(genInstance), 0, 6).Draw(t, "instances")
		}
		l.Metadata.Count = len(l.Values)
		l.Metadata.Limit = rapid.IntRange(1, 10000).Draw(t, "limit")
		if rapid.Bool().Draw(t, "has marker") {
			m := genString(t, "marker")
			l.Metadata.NextMarker = &m
		}
		body := encodeList(t, l)
		if !checkSame(t, body) && isPlain(l) && (l.Metadata.NextMarker == nil || isPlainString(*l.Metadata.NextMarker)) {
			t.Fatalf("fast path refused a plain server-shaped list:\n%s", body)
		}
		// A body cut short anywhere is malformed: never taken, and the
		// fallback reports the error.
		cut := rapid.IntRange(0, len(body)-2).Draw(t, "cut")
		if checkSame(t, body[:cut]) {
			t.Fatalf("fast path took a truncated body %q", body[:cut])
		}
	})
}

func isPlainString(s string) bool {
	return isPlain(api.List[api.Instance]{Values: []api.Instance{{ID: s}}})
}

// parseTime is the reference for listScanner.time: it parses the form the
// server writes, RFC 3339 in UTC with 0 to 9
// digits of fraction: 2006-01-02T15:04:05.999999999Z. It refuses anything
// else, including values time.Parse would refuse (day 31 of a 30-day month,
// hour 24), which the caller then leaves to encoding/json.
func parseTime(s string) (time.Time, bool) {
	const base = len("2006-01-02T15:04:05Z")
	if len(s) < base || len(s) == base+1 || len(s) > base+10 ||
		s[10] != 'T' || s[13] != ':' || s[16] != ':' || s[len(s)-1] != 'Z' {
		return time.Time{}, false
	}
	midnight, ok := parseDay(s[:10])
	if !ok {
		return time.Time{}, false
	}
	hour, ok1 := digits2(s, 11)
	minute, ok2 := digits2(s, 14)
	sec, ok3 := digits2(s, 17)
	if !(ok1 && ok2 && ok3) || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	nsec := 0
	if len(s) > base {
		if s[19] != '.' {
			return time.Time{}, false
		}
		frac := s[20 : len(s)-1]
		n, ok := digits(frac)
		if !ok {
			return time.Time{}, false
		}
		for range 9 - len(frac) {
			n *= 10
		}
		nsec = n
	}
	return time.Unix(midnight+int64(hour*3600+minute*60+sec), int64(nsec)).UTC(), true
}

func TestParseTime(t *testing.T) {
	cases := []string{
		"2026-03-04T05:06:07Z", "2026-03-04T05:06:07.1Z", "2026-03-04T05:06:07.123456789Z",
		"0000-01-01T00:00:00Z", "9999-12-31T23:59:59.999999999Z", "2024-02-29T00:00:00Z",
		"2023-02-29T00:00:00Z", "2026-04-31T00:00:00Z", "2026-13-01T00:00:00Z", "2026-00-01T00:00:00Z",
		"2026-03-04T24:00:00Z", "2026-03-04T05:60:00Z", "2026-03-04T05:06:60Z", "2026-03-04T05:06:07.Z",
		"2026-03-04T05:06:07.1234567890Z", "2026-03-04T05:06:07+00:00", "2026-03-04 05:06:07Z",
		"2026-3-04T05:06:07Z", "2026-03-04T05:06:07,5Z", "+026-03-04T05:06:07Z", "2026-03-04T05:06:07z",
		"2026-03-04T23:59:59.5Z", "2026-03-04T0a:00:00Z", "2026-03-04T00:00:0/Z", "2026-03-05T00:00:00Z",
		"2026-03-04T05:06:07.5", "2026-03-04T05:06:07", "", "2026-03-04", "2026-03-04T05:06:07.12345678Z",
		"2026-03-04T05:06:07.1234Z", "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00T05:06:07Z", "2026-03-04T05:06:07Zx",
	}
	// One scanner through every case, as one body's times go through one:
	// it remembers the last date read.
	shared := new(listScanner)
	for _, s := range append(cases, cases...) {
		t.Run(s, func(t *testing.T) {
			got, ok := parseTime(s)
			// The scanner reads a time after its opening quote, at fixed
			// offsets, as parseTime does; so close to the end of the body
			// that the longest time would not fit, it refuses.
			shared.s, shared.i = s+`"`+strings.Repeat(",", longestTime), 0
			var got2 time.Time
			ok2 := shared.time(timeExpires, &got2)
			if ok2 != ok || !reflect.DeepEqual(got2, got) || (ok && shared.i != len(s)+1) {
				t.Fatalf("in %q: %v, %v (next %d); parseTime: %v, %v", shared.s, got2, ok2, shared.i, got, ok)
			}
			shared.s, shared.i = s+`"`, 0
			if took, want := shared.time(timeExpires, &got2), ok && len(s)+1 == longestTime; took != want {
				t.Fatalf("%q ending the body: time answered %v, want %v", s, took, want)
			}
			var want time.Time
			err := want.UnmarshalJSON([]byte(`"` + s + `"`))
			if ok && (err != nil || !reflect.DeepEqual(got, want)) {
				t.Fatalf("parseTime = %v, UnmarshalJSON = %v, %v", got, want, err)
			}
			if !ok && err == nil && strings.HasSuffix(s, "Z") && len(s) <= len("2006-01-02T15:04:05.999999999Z") && s[len("2006-01-02T15:04:05")] != ',' {
				t.Fatalf("parseTime refused %q, which UnmarshalJSON takes as %v", s, want)
			}
		})
	}
}

// FuzzDecodeInstanceList: on any input, the fast path either answers what
// encoding/json answers or leaves the body to it. `go test` runs the seeds.
func FuzzDecodeInstanceList(f *testing.F) {
	plain := encodeList(f, sampleList())
	f.Add(plain)
	f.Add(encodeList(f, api.List[api.Instance]{}))
	f.Add(encodeList(f, api.List[api.Instance]{Values: []api.Instance{{}}}))
	f.Add(strings.Replace(plain, `"port":8080`, `"port":-0`, 1))
	f.Add(strings.Replace(plain, `"tags":[]`, `"tags":null`, 1))
	f.Add(strings.Replace(plain, `"metadata":{"k":"v","é":"ü"}`, `"metadata":{"k":"v","k":"w"}`, 1))
	f.Add(strings.Replace(plain, `"i-1"`, `"i\"1"`, 1))
	f.Add(plain[:100])
	f.Add("")
	// Alike instances: the decoder takes repeated fields from the
	// previous instance.
	alike := benchList()
	alike.Values = alike.Values[:3]
	alike.Values[1].Metadata = map[string]string{"k": "v"}
	f.Add(encodeList(f, alike))
	f.Fuzz(func(t *testing.T, body string) {
		checkSame(t, body)
	})
}

// benchList is a lookup answer of the bench: 100 instances of one service,
// as `muster bench --scenario lookup` registers them (one address, ports
// and ids that differ, one tag, millisecond times).
func benchList() api.List[api.Instance] {
	at := time.Date(2026, 3, 4, 5, 6, 7, 890_000_000, time.UTC)
	l := api.List[api.Instance]{Metadata: api.ListMetadata{Count: 100, Limit: 10000}}
	for i := range 100 {
		l.Values = append(l.Values, api.Instance{
			Namespace: "bench", Service: "lookup-3", ID: fmt.Sprintf("lookup-3-%04d", i), Address: "10.0.0.1", Port: 8080 + i,
			Endpoints: []string{}, Tags: []string{"bench"}, Metadata: map[string]string{}, HeartbeatTimeout: 120, Status: api.StatusPassing,
			RegisteredAt: at, LastHeartbeatAt: at.Add(time.Duration(i) * time.Millisecond), ExpiresAt: at.Add(120*time.Second + time.Duration(i)*time.Millisecond),
		})
	}
	return l
}

// variedList is a service's 100 instances as a deployment has them: an
// address each, one port, a revision, endpoints, two tags, a zone in the
// metadata, a few critical, times to the nanosecond.
func variedList() api.List[api.Instance] {
	at := time.Date(2026, 3, 4, 23, 59, 58, 123_456_789, time.UTC)
	l := api.List[api.Instance]{Metadata: api.ListMetadata{Count: 100, Limit: 1000}}
	for i := range 100 {
		status := api.StatusPassing
		if i%17 == 0 {
			status = api.StatusCritical
		}
		reg := at.Add(-time.Duration(i) * 7919 * time.Millisecond)
		l.Values = append(l.Values, api.Instance{
			Namespace: "payments", Service: "ledger-api", ID: fmt.Sprintf("ledger-api-7f9c%04x", uint32(i)*2654435761%65536), RevisionTag: "v2.14.3",
			Address: fmt.Sprintf("10.12.%d.%d", i/50, 10+i%50), Port: 8443, PublicURL: fmt.Sprintf("https://ledger-%d.payments.example", i),
			Endpoints: []string{"/v1/ledger", "/healthz"}, Tags: []string{"grpc", "primary"},
			Metadata: map[string]string{"zone": []string{"eu-west-1a", "eu-west-1b", "eu-west-1c"}[i%3]}, HeartbeatTimeout: 30, Status: status,
			RegisteredAt: reg, LastHeartbeatAt: at.Add(-time.Duration(i) * 3 * time.Millisecond), ExpiresAt: at.Add(30*time.Second - time.Duration(i)*3*time.Millisecond),
		})
	}
	return l
}

// serverBody is l as the server writes a list answer: the frame of
// internal/httpapi's appendInstanceList around state.AppendInstanceJSON.
// The server's encoder is held to encoding/json's bytes by its own tests;
// this checks it once more on the bodies the benchmark decodes.
func serverBody(t tb, l api.List[api.Instance]) string {
	t.Helper()
	b := []byte(`{"values":[`)
	for i := range l.Values {
		if i > 0 {
			b = append(b, ',')
		}
		var ok bool
		if b, ok = state.AppendInstanceJSON(b, &l.Values[i], state.MetadataOf(l.Values[i].Metadata)); !ok {
			t.Fatal("the server's encoder refused a time")
		}
	}
	b = fmt.Appendf(b, `],"metadata":{"count":%d,"limit":%d,"next_marker":null}}`+"\n", l.Metadata.Count, l.Metadata.Limit)
	if string(b) != encodeList(t, l) {
		t.Fatalf("the server's encoder and encoding/json differ:\n%s\n%s", b, encodeList(t, l))
	}
	return string(b)
}

// BenchmarkDecodeInstanceList compares the SDK's decoding of a 100-instance
// answer before (encoding/json) and after (the fast path, including a copy
// of the body, as reading it into a pooled buffer costs), on the bench's
// lookup answer and on a more varied one.
//
//	go test -run '^$' -bench DecodeInstanceList -benchmem ./client
func BenchmarkDecodeInstanceList(b *testing.B) {
	for _, list := range []struct {
		name string
		l    api.List[api.Instance]
	}{{"bench", benchList()}, {"varied", variedList()}} {
		body := serverBody(b, list.l)
		b.Run(list.name+"/encoding-json", func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := slowDecode(body); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(list.name+"/fast", func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			buf := make([]byte, len(body))
			for b.Loop() {
				copy(buf, body)
				if _, ok := decodeInstanceList(buf); !ok {
					b.Fatal("fast path refused the server's shape")
				}
			}
		})
	}
}

// The benchmarks' bodies are server-shaped: the fast path takes them, and
// gives what encoding/json gives.
func TestDecodeInstanceListBenchBodies(t *testing.T) {
	for _, l := range []api.List[api.Instance]{benchList(), variedList()} {
		if !checkSame(t, serverBody(t, l)) {
			t.Fatal("fast path refused the server's shape")
		}
	}
}

// ListInstances reads answers of known and unknown length (chunked), and
// falls back to encoding/json on a body the fast path does not take.
func TestListInstancesReadsEveryBody(t *testing.T) {
	plain := encodeList(t, sampleList())
	cases := []struct {
		name    string
		body    string
		chunked bool
	}{
		{"content length", plain, false},
		{"chunked", plain, true},
		{"fallback, content length", strings.Replace(plain, `"id":`, `"id": `, -1), false},
		{"fallback, chunked", strings.Replace(plain, `"id":`, `"id": `, -1), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				if !tc.chunked {
					w.Header().Set("Content-Length", fmt.Sprint(len(tc.body)))
				}
				half := len(tc.body) / 2
				_, _ = io.WriteString(w, tc.body[:half])
				if tc.chunked {
					http.NewResponseController(w).Flush()
				}
				_, _ = io.WriteString(w, tc.body[half:])
			}))
			defer srv.Close()
			c, err := New(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := slowDecode(tc.body)
			for range 3 { // the second and third reuse a pooled buffer
				got, _, err := c.ListInstances(context.Background(), "prod", "billing", InstanceListOptions{})
				if err != nil || !reflect.DeepEqual(got, want) {
					t.Fatalf("ListInstances = %+v, %v\nwant %+v", got, err, want)
				}
			}
		})
	}
}
