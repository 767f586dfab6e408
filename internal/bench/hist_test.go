package bench

import (
	"math"
	"testing"
	"time"
)

func TestBucketsAreContiguous(t *testing.T) {
	for i := 1; i < nBuckets; i++ {
		if lowOf(i) != highOf(i-1)+1 {
			t.Fatalf("bucket %d starts at %d, bucket %d ends at %d", i, lowOf(i), i-1, highOf(i-1))
		}
	}
	for _, v := range []uint64{0, 1, 127, 128, 129, 255, 256, 1000, 1 << 20, 1<<40 + 12345, math.MaxUint64} {
		i := bucketOf(v)
		if v < lowOf(i) || v > highOf(i) {
			t.Errorf("%d went to bucket %d [%d,%d]", v, i, lowOf(i), highOf(i))
		}
	}
}

func TestQuantiles(t *testing.T) {
	tests := []struct {
		name     string
		values   []time.Duration
		q        float64
		wantMs   float64
		tolerant float64
	}{
		{"empty", nil, 0.5, 0, 0},
		{"one", []time.Duration{3 * time.Millisecond}, 0.99, 3, 0.05},
		{"uniform p50", spread(1, 1000), 0.5, 500, 8},
		{"uniform p99", spread(1, 1000), 0.99, 990, 16},
		{"max caps", []time.Duration{time.Microsecond, 10 * time.Second}, 1, 10000, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var h Histogram
			for _, v := range tc.values {
				h.Record(v)
			}
			if got := h.Quantile(tc.q); math.Abs(got-tc.wantMs) > tc.tolerant {
				t.Errorf("Quantile(%v) = %v ms, want %v ± %v", tc.q, got, tc.wantMs, tc.tolerant)
			}
			if h.Quantile(0.5) > h.Quantile(0.99) || h.Quantile(0.99) > h.Max() {
				t.Errorf("p50 %v, p99 %v, max %v out of order", h.Quantile(0.5), h.Quantile(0.99), h.Max())
			}
		})
	}
}

func spread(fromMs, toMs int) []time.Duration {
	var out []time.Duration
	for ms := fromMs; ms <= toMs; ms++ {
		out = append(out, time.Duration(ms)*time.Millisecond)
	}
	return out
}
