package client

import (
	"math/bits"
	"time"
)

// The server writes times as time.Time.MarshalJSON does, from UTC times:
// 2006-01-02T15:04:05.999999999Z, with 0 to 9 digits of fraction (trailing
// zeros dropped). Three per instance make times the largest part of
// decoding a list after the strings, so that form is read by hand, at
// fixed offsets, and with the date remembered: the times of one field
// mostly fall on one day over an answer.

// longestTime is the longest time the server writes, with its closing
// quote.
const longestTime = len(`2006-01-02T15:04:05.999999999Z"`)

// day is a date as the first ten bytes of a time, and the Unix time of its
// midnight, UTC.
type day struct {
	lo   uint64 // bytes 0 to 7, as load64 reads them
	hi   uint16 // bytes 8 and 9
	unix int64
	set  bool // a zero day matches no date
}

// time reads a time, d.i after its opening quote, up to and including its
// closing quote; k is its field (which date to remember). It takes exactly
// what the tests' parseTime takes, and gives the same value, except that it
// refuses a time closer to the end of the body than the longest time.
func (d *listScanner) time(k int, p *time.Time) bool {
	if len(d.s)-d.i < longestTime {
		// Only a malformed body ends so soon after a time: encoding/json
		// is left to say so.
		return false
	}
	t := d.s[d.i : d.i+longestTime]
	dy := &d.days[k]
	if lo, hi := load64(t, 0), uint16(t[8])|uint16(t[9])<<8; !dy.set || lo != dy.lo || hi != dy.hi {
		unix, ok := parseDay(t[:10])
		if !ok {
			return false
		}
		*dy = day{lo: lo, hi: hi, unix: unix, set: true}
	}
	// The clock, hh:mm:ss, at 11, is read as one word: the colons are
	// checked and made zero digits, then all eight bytes checked as
	// digits, and each pair folded into its low byte (10×first+second).
	const colons = 0x0000_ff00_00ff_0000
	clock := load64(t, 11)
	if t[10] != 'T' || clock&colons != 0x0000_3a00_003a_0000 {
		return false
	}
	clock = clock&^colons | 0x0000_3000_0030_0000
	if nonDigits(clock) != 0 {
		return false
	}
	clock -= ones * '0'
	clock = clock*10 + clock>>8
	hour, minute, sec := int(clock&0xff), int(clock>>24&0xff), int(clock>>48&0xff)
	if hour > 23 || minute > 59 || sec > 59 {
		return false
	}
	j, nsec := 19, 0
	if t[j] == '.' {
		// Up to eight digits from 20 as one word, padded with zeros to
		// eight (so scaled to tens of nanoseconds), then the ninth.
		frac := load64(t, 20)
		n := bits.TrailingZeros64(nonDigits(frac)) / 8
		if n == 0 {
			return false
		}
		keep := uint64(1)<<(8*n) - 1 // all ones for n = 8
		nsec = int(eightDigits(frac&keep|ones*'0'&^keep)) * 10
		j = 20 + n
		if c := t[j] - '0'; n == 8 && c <= 9 {
			nsec += int(c)
			j++
		}
	}
	if t[j] != 'Z' || t[j+1] != '"' {
		return false
	}
	d.i += j + 2
	// time.Unix(…).UTC() is the same value as time.Date(…, time.UTC).
	*p = time.Unix(dy.unix+int64(hour*3600+minute*60+sec), int64(nsec)).UTC()
	return true
}

// ones has a one in each byte: ones*c has c in each.
const ones = 0x0101_0101_0101_0101

// nonDigits is not zero when a byte of x is not an ASCII digit, and its
// lowest set bit is in the first such byte (the tricks of special: a
// flag can be wrong only above a right one).
func nonDigits(x uint64) uint64 {
	return ((x-ones*'0')&^x | (x + ones*(0x80-'9'-1)) | x) & (ones * 0x80)
}

// eightDigits is the number written by the eight ASCII digits of x, the
// first in the low byte (simdjson's parse_eight_digits_unrolled): pairs,
// then fours, then the whole, each step one multiply.
func eightDigits(x uint64) uint64 {
	x -= ones * '0'
	x = x*10 + x>>8
	return ((x&0x0000_00ff_0000_00ff)*(100+1_000_000<<32) + (x>>16&0x0000_00ff_0000_00ff)*(1+10_000<<32)) >> 32
}

// parseDay parses 2006-01-02 into the Unix time of its midnight, UTC.
func parseDay(s string) (int64, bool) {
	if len(s) != 10 || s[4] != '-' || s[7] != '-' {
		return 0, false
	}
	year, ok1 := digits(s[0:4])
	month, ok2 := digits2(s, 5)
	day, ok3 := digits2(s, 8)
	if !(ok1 && ok2 && ok3) || month < 1 || month > 12 || day < 1 || day > daysIn(month, year) {
		return 0, false
	}
	return time.Date(year, time.Month(month), day, 0, 0, 0, 0, time.UTC).Unix(), true
}

// digits2 parses the two decimal digits of s at i.
func digits2(s string, i int) (int, bool) {
	a, b := s[i]-'0', s[i+1]-'0'
	return int(a)*10 + int(b), a <= 9 && b <= 9
}

// digits parses a run of 1 to 9 decimal digits.
func digits(s string) (int, bool) {
	if len(s) == 0 || len(s) > 9 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// daysIn is the number of days of month in year (proleptic Gregorian).
func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}
