package fsm

import (
	"fmt"
	"time"

	"github.com/muster-registry/muster/internal/state"
)

// ExpireInstances carries an expiry wave: up to 5,000 items a command,
// dozens of commands a second. As JSON each item took ~120 bytes and
// decoding the command (every replica does) cost more than applying it, so
// its body is binary too. The body after the type byte starts with
// expireBinV1, which no JSON body starts with, so entries written as JSON
// by earlier binaries still decode. Layout, integers as varints and strings
// as a uvarint length and the bytes:
//
//	0x01 time count item*
//	item: flags [namespace service] id reg_index deadline
//
// time is RFC 3339 text. flags bit 0 (expireNewService) says that the
// namespace and service follow; without it they are the previous item's
// (the first item always has them). A deadline is, with flags bit 1
// (expireTextTime), its RFC 3339 text; without it, a UTC time held as a
// varint: its Unix nanoseconds minus those of the previous such deadline
// (0 before the first), so that sorted deadlines take a few bytes each.
// Either way it decodes to the time.Time that JSON gives.
const expireBinV1 = 0x01

const (
	expireNewService = 1 << 0
	expireTextTime   = 1 << 1
)

// encodeExpireInstances writes c in the binary form; an empty command is
// written as JSON, which keeps a nil and an empty list apart.
func encodeExpireInstances(c *ExpireInstances) ([]byte, error) {
	if len(c.Items) == 0 {
		return encodeJSON(c)
	}
	w := binWriter{b: make([]byte, 0, 64+len(c.Items)*24)}
	w.b = append(w.b, byte(TypeExpireInstances), expireBinV1)
	w.time(c.Time)
	w.uvarint(uint64(len(c.Items)))
	var prevNS int64
	for i := range c.Items {
		it := &c.Items[i]
		var flags byte
		if i == 0 || it.Key.Namespace != c.Items[i-1].Key.Namespace || it.Key.Service != c.Items[i-1].Key.Service {
			flags |= expireNewService
		}
		ns, numeric := unixNanoUTC(it.Deadline)
		if !numeric {
			flags |= expireTextTime
		}
		w.b = append(w.b, flags)
		if flags&expireNewService != 0 {
			w.str(it.Key.Namespace)
			w.str(it.Key.Service)
		}
		w.str(it.Key.ID)
		w.uvarint(it.RegIndex)
		if numeric {
			w.varint(ns - prevNS)
			prevNS = ns
		} else {
			w.time(it.Deadline)
		}
	}
	if w.err != nil {
		return nil, fmt.Errorf("fsm: encoding command %d: %w", TypeExpireInstances, w.err)
	}
	return w.b, nil
}

// unixNanoUTC answers t's Unix nanoseconds when t is a UTC time that
// time.Unix(0, ns).UTC() gives back exactly (as JSON's text would): in
// UTC's own location, and within the years int64 nanoseconds reach.
func unixNanoUTC(t time.Time) (int64, bool) {
	if t.Location() != time.UTC {
		return 0, false
	}
	ns := t.UnixNano()
	return ns, time.Unix(0, ns).UTC().Equal(t)
}

// decodeExpireInstances reads body, what follows the type byte and
// expireBinV1.
func decodeExpireInstances(body []byte) (*ExpireInstances, error) {
	r := binReader{b: body}
	c := &ExpireInstances{Time: r.time()}
	n := r.count() // every item takes at least one byte
	if n > 0 {
		c.Items = make([]state.Expiry, n)
	} else if r.err == nil {
		r.fail("no items (an empty command is written as JSON)")
	}
	var (
		prevNS      int64
		ns, service string
	)
	for i := range c.Items {
		if r.err != nil {
			break
		}
		it := &c.Items[i]
		flags := r.byte()
		if flags&^(expireNewService|expireTextTime) != 0 {
			r.fail("item flags %#x", flags)
		}
		if flags&expireNewService != 0 {
			ns, service = r.str(), r.str()
		} else if i == 0 {
			r.fail("the first item has no service")
		}
		it.Key = state.InstanceKey{Namespace: ns, Service: service, ID: r.str()}
		it.RegIndex = r.uvarint()
		if flags&expireTextTime != 0 {
			it.Deadline = r.time()
		} else {
			prevNS += r.varint()
			it.Deadline = time.Unix(0, prevNS).UTC()
		}
	}
	if r.err == nil && len(r.b) > 0 {
		r.fail("%d bytes after the command", len(r.b))
	}
	if r.err != nil {
		return nil, fmt.Errorf("fsm: decoding command %d: %w", TypeExpireInstances, r.err)
	}
	return c, nil
}
