package bench

import (
	"bufio"
	"errors"
	"io"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestReadChanges(t *testing.T) {
	join := func(id int, inst string) string {
		return "id: " + strconv.Itoa(id) + "\nevent: instance.join\ndata: {\"id\":" + strconv.Itoa(id) +
			",\"type\":\"instance.join\",\"namespace\":\"w\",\"service\":\"watched\",\"time\":\"2026-11-23T01:02:03.004Z\",\"payload\":{\"namespace\":\"w\",\"service\":\"watched\",\"id\":\"" +
			inst + "\",\"address\":\"10.0.0.2\",\"port\":1,\"tags\":[\"id\"],\"metadata\":{\"k\":\"\\\"id\\\":\\\"x\"},\"status\":\"passing\"}}\n\n"
	}
	cases := []struct {
		name    string
		stream  string
		want    []int
		wantErr string
	}{
		{"changes", join(7, "c-0") + join(8, "c-1") + join(9, "c-12"), []int{0, 1, 12}, ""},
		{"other instances and pings are skipped", ": ping\n\n" + join(3, "prime") + join(4, "c-2") + ": ping\n\n" + join(5, "web-c-3"), []int{2}, ""},
		{"an error event ends it", join(4, "c-2") + "event: error\ndata: {\"error\":\"Events compacted.\",\"type\":\"events_compacted\"}\n\n" + join(5, "c-3"),
			[]int{2}, `bench: the stream ended with an error: {"error":"Events compacted.","type":"events_compacted"}`},
		{"a line longer than the buffer", join(1, "c-1") + "data: " + strings.Repeat("x", 70_000) + "\n\n", []int{1}, "longer than"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []int
			// One byte at a time, so frames straddle reads.
			err := readChanges(bufio.NewReaderSize(io.LimitReader(&oneByte{s: tc.stream}, int64(len(tc.stream))), streamBuffer), func(seq int, _ time.Time) error {
				got = append(got, seq)
				return nil
			})
			if !slices.Equal(got, tc.want) {
				t.Errorf("changes %v, want %v", got, tc.want)
			}
			switch {
			case tc.wantErr == "" && !errors.Is(err, io.EOF):
				t.Errorf("error %v, want io.EOF at the end", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

// oneByte reads s one byte per call.
type oneByte struct{ s string }

func (r *oneByte) Read(p []byte) (int, error) {
	if r.s == "" {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	p[0], r.s = r.s[0], r.s[1:]
	return 1, nil
}
