package bench

import (
	"math"
	"math/bits"
	"time"
)

// subBits sets the histogram's precision: each power of two is cut into
// 2^(subBits-1) buckets, so a recorded value is off by under 1/64 (1.6 %).
const subBits = 7

const (
	subCount = 1 << subBits // values below this have a bucket each
	halfSub  = subCount / 2 // buckets per power of two above that
	nBuckets = (64-subBits+2)*halfSub + halfSub
)

// Histogram is an HDR-like log-linear histogram of durations in
// microseconds: constant memory, constant-time Record, mergeable.
//
// Concurrency: not safe for concurrent use; give each goroutine its own and
// Merge them.
type Histogram struct {
	counts [nBuckets]uint64
	n      uint64
	sum    float64
	max    uint64
}

func bucketOf(v uint64) int {
	if v < subCount {
		return int(v)
	}
	shift := bits.Len64(v) - subBits
	return shift*halfSub + int(v>>shift)
}

// lowOf is the smallest value of bucket i; highOf the largest.
func lowOf(i int) uint64 {
	if i < subCount {
		return uint64(i)
	}
	shift := i/halfSub - 1
	return uint64(i%halfSub+halfSub) << shift
}

func highOf(i int) uint64 {
	if i < subCount {
		return uint64(i)
	}
	shift := i/halfSub - 1
	return lowOf(i) + (1 << shift) - 1
}

// Record adds one duration (negative durations count as zero).
func (h *Histogram) Record(d time.Duration) {
	v := uint64(max(d.Microseconds(), 0))
	h.counts[bucketOf(v)]++
	h.n++
	h.sum += float64(v)
	h.max = max(h.max, v)
}

// Merge adds o's values to h.
func (h *Histogram) Merge(o *Histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
	h.max = max(h.max, o.max)
}

// Count is the number of recorded values.
func (h *Histogram) Count() uint64 { return h.n }

// Quantile answers the value (in milliseconds) below which the fraction q
// of the recorded values fall: the midpoint of its bucket, never above Max.
func (h *Histogram) Quantile(q float64) float64 {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			mid := (lowOf(i) + highOf(i)) / 2
			return float64(min(mid, h.max)) / 1000
		}
	}
	return h.Max()
}

// Max is the largest value in milliseconds, exactly.
func (h *Histogram) Max() float64 { return float64(h.max) / 1000 }

// Mean is the average in milliseconds.
func (h *Histogram) Mean() float64 {
	if h.n == 0 {
		return 0
	}
	return h.sum / float64(h.n) / 1000
}
