package client

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/muster-registry/muster/api"
)

// The decoder takes a field's value from the previous instance when the
// body repeats its bytes (listScanner.memo). These tests draw lists whose
// instances are alike: every field from two or three values, so that
// fields and runs of fields repeat, change, and come back.

func genAlikeInstance(t *rapid.T) api.Instance {
	str := func(label string, vs ...string) string { return rapid.SampledFrom(vs).Draw(t, label) }
	strs := func(label string) []string {
		return rapid.SampledFrom([][]string{nil, {}, {"a"}, {"a", "b"}, {"b"}}).Draw(t, label)
	}
	v := api.Instance{
		Namespace: str("ns", "prod", "", "pro"), Service: str("svc", "billing", "billing2"),
		ID: str("id", "i-1", "i-2", "i-10"), RevisionTag: str("rev", "", "1.2.0"),
		Address: str("addr", "10.0.0.1", "10.0.0.10", ""), Port: rapid.SampledFrom([]int{8080, 80, 808, -1, 0}).Draw(t, "port"),
		PublicURL: str("url", "", "https://x.example/a"), Endpoints: strs("endpoints"), Tags: strs("tags"),
		HeartbeatTimeout: rapid.SampledFrom([]int{30, 3, 300}).Draw(t, "timeout"), Status: str("status", api.StatusPassing, api.StatusCritical),
		RegisteredAt:    genAlikeTime(t, "reg"),
		LastHeartbeatAt: genAlikeTime(t, "last"),
		ExpiresAt:       genAlikeTime(t, "exp"),
	}
	switch rapid.IntRange(0, 3).Draw(t, "metadata") {
	case 1:
		v.Metadata = map[string]string{}
	case 2:
		v.Metadata = map[string]string{"zone": "a"}
	case 3:
		v.Metadata = map[string]string{"zone": "a", "rack": "7"}
	}
	return v
}

// genAlikeTime draws times of a few days, whole seconds or not.
func genAlikeTime(t *rapid.T, label string) time.Time {
	day := time.Date(2026, 2, 28, 0, 0, 0, 0, time.UTC).AddDate(0, 0, rapid.IntRange(0, 2).Draw(t, label+" day"))
	sec := rapid.IntRange(0, 86399).Draw(t, label+" s")
	nsec := rapid.SampledFrom([]int{0, 1, 120_000_000, 123_456_789, 999_999_999, 100_000}).Draw(t, label+" ns")
	return day.Add(time.Duration(sec)*time.Second + time.Duration(nsec))
}

// TestDecodeInstanceListAlike: alike instances decode as with
// encoding/json, and no two share a list or a map (a caller may change
// one instance's without changing another's).
func TestDecodeInstanceListAlike(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		base := rapid.SliceOfN(rapid.Custom(genAlikeInstance), 1, 3).Draw(t, "base")
		// Mostly repeats of a few instances, in any order.
		var l api.List[api.Instance]
		for range rapid.IntRange(0, 12).Draw(t, "len") {
			l.Values = append(l.Values, base[rapid.IntRange(0, len(base)-1).Draw(t, "which")])
		}
		l.Metadata = api.ListMetadata{Count: len(l.Values), Limit: 100}
		body := encodeList(t, l)
		if !checkSame(t, body) {
			t.Fatalf("fast path refused a plain server-shaped list:\n%s", body)
		}
		fast, _ := decodeInstanceList([]byte(body))
		want, _ := slowDecode(body)
		for i := range fast.Values {
			for _, vs := range []*api.List[api.Instance]{&fast, &want} {
				v := &vs.Values[i]
				if len(v.Tags) > 0 {
					v.Tags[0] = fmt.Sprint("changed tag ", i)
				}
				if len(v.Endpoints) > 0 {
					v.Endpoints[len(v.Endpoints)-1] = fmt.Sprint("changed endpoint ", i)
				}
				if v.Metadata != nil {
					v.Metadata["changed"] = fmt.Sprint(i)
				}
			}
		}
		if !reflect.DeepEqual(fast, want) {
			t.Fatalf("after changing each instance's lists and maps, the fast path's values differ:\n fast %#v\n want %#v", fast, want)
		}
	})
}

// TestDecodeInstanceListChanges: one field changes between two otherwise
// equal instances, wherever it is (inside a remembered run or not), and
// the second instance still has every field right.
func TestDecodeInstanceListChanges(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 890_000_000, time.UTC)
	a := api.Instance{
		Namespace: "prod", Service: "billing", ID: "i-1", RevisionTag: "1.2.0", Address: "10.0.0.1", Port: 8080,
		PublicURL: "https://x.example", Endpoints: []string{"/a"}, Tags: []string{"t"}, Metadata: map[string]string{"k": "v"},
		HeartbeatTimeout: 30, Status: api.StatusPassing, RegisteredAt: at, LastHeartbeatAt: at, ExpiresAt: at.Add(30 * time.Second),
	}
	cases := []struct {
		name   string
		change func(v *api.Instance)
	}{
		{"nothing", func(v *api.Instance) {}},
		{"namespace", func(v *api.Instance) { v.Namespace = "pro" }},
		{"service", func(v *api.Instance) { v.Service = "billing-2" }},
		{"id", func(v *api.Instance) { v.ID = "i-2" }},
		{"revision", func(v *api.Instance) { v.RevisionTag = "" }},
		{"address", func(v *api.Instance) { v.Address = "10.0.0.10" }},
		{"port", func(v *api.Instance) { v.Port = 80800 }},
		{"public url", func(v *api.Instance) { v.PublicURL = "https://x.example/" }},
		{"endpoints", func(v *api.Instance) { v.Endpoints = nil }},
		{"tags", func(v *api.Instance) { v.Tags = []string{} }},
		{"metadata", func(v *api.Instance) { v.Metadata = map[string]string{"k": "w"} }},
		{"no metadata", func(v *api.Instance) { v.Metadata = nil }},
		{"timeout", func(v *api.Instance) { v.HeartbeatTimeout = 300 }},
		{"status", func(v *api.Instance) { v.Status = api.StatusCritical }},
		{"registered", func(v *api.Instance) { v.RegisteredAt = at.AddDate(0, 0, 1) }},
		{"last heartbeat", func(v *api.Instance) { v.LastHeartbeatAt = at.Add(time.Nanosecond) }},
		{"expires", func(v *api.Instance) { v.ExpiresAt = at.AddDate(-1, 0, 0) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := a
			tc.change(&b)
			// a, a, b, a: the field is remembered, changes, and comes back.
			l := api.List[api.Instance]{Values: []api.Instance{a, a, b, a}, Metadata: api.ListMetadata{Count: 4, Limit: 10}}
			if !checkSame(t, encodeList(t, l)) {
				t.Fatal("fast path refused the server's shape")
			}
		})
	}
}

// TestTimeWords holds the word-at-a-time readers of times to byte by byte
// ones, on every byte at every position.
func TestTimeWords(t *testing.T) {
	const digits = "12345678"
	for pos := range 8 {
		for c := range 256 {
			b := []byte(digits)
			b[pos] = byte(c)
			x := load64(string(b), 0)
			first := 8 // the first byte that is not a digit
			for i, c := range b {
				if c < '0' || c > '9' {
					first = i
					break
				}
			}
			m := nonDigits(x)
			if got := min(8, int(bitsTrailingZeros(m))/8); got != first {
				t.Fatalf("nonDigits(%q) flags byte %d first, want %d", b, got, first)
			}
			if first == 8 {
				want, _ := strconv.ParseUint(string(b), 10, 64)
				if got := eightDigits(x); got != want {
					t.Fatalf("eightDigits(%q) = %d", b, got)
				}
			}
		}
	}
}

// bitsTrailingZeros is bits.TrailingZeros64 with 64 for zero.
func bitsTrailingZeros(x uint64) uint64 {
	n := uint64(0)
	for ; n < 64 && x&(1<<n) == 0; n++ {
	}
	return n
}

// TestTimeProperty: times as the server writes them, whole or with one
// byte changed, read as time.Time.UnmarshalJSON reads them (or left to
// it), at fixed offsets and near the end of a body.
func TestTimeProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		sec := rapid.Int64Range(-62135596800, 253402300799).Draw(t, "s") // years 1 to 9999
		nsec := rapid.Int64Range(0, 999_999_999).Draw(t, "ns")
		nsec -= nsec % rapid.SampledFrom([]int64{1, 10, 1_000, 1_000_000, 1_000_000_000}).Draw(t, "unit")
		s := []byte(time.Unix(sec, nsec).UTC().Format(time.RFC3339Nano))
		if rapid.Bool().Draw(t, "change") {
			s[rapid.IntRange(0, len(s)-1).Draw(t, "at")] = rapid.Byte().Draw(t, "to")
		}
		var want time.Time
		err := want.UnmarshalJSON([]byte(`"` + string(s) + `"`))
		serverForm := err == nil && s[len(s)-1] == 'Z' && !strings.ContainsAny(string(s), `,"`)
		d := listScanner{s: string(s) + `"` + strings.Repeat(",", longestTime)}
		var got time.Time
		ok := d.time(rapid.IntRange(0, timeFields-1).Draw(t, "field"), &got)
		if ok && (err != nil || !reflect.DeepEqual(got, want) || d.i != len(s)+1) {
			t.Fatalf("time(%q) = %v (next %d), UnmarshalJSON = %v, %v", s, got, d.i, want, err)
		}
		if !ok && serverForm {
			t.Fatalf("time refused %q, which the server writes", s)
		}
	})
}
