package httpapi

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/muster-registry/muster/api"
	"github.com/muster-registry/muster/internal/state"
)

// A lookup lists one service's instances, and most lookups ask for the same
// unfiltered answer that the previous one got. listCache keeps that answer
// encoded, per service and page size, for as long as nothing it shows can
// have changed. What an instance list shows comes from two places:
//
//   - the state: the service's sorted instances, a slice that the store
//     replaces on every write to the service (state.Store.Instances). An
//     entry holds the slice it was built from (so its memory is never
//     reused for another) and matches only that same slice;
//   - the leader's lease table: last_heartbeat_at, expires_at, and the
//     status, which turns critical when the clock passes a deadline. An
//     entry remembers the service's lease.Table.ServiceVersion, read before
//     the leases were, and matches only while it is unchanged; and it is
//     used only from the moment it was built until the earliest deadline of
//     an instance it shows as passing.
//
// So an answer from the cache is byte for byte the answer that would be
// built at that moment. The X-Muster-Index header is not cached: each
// answer carries the index read with the instances.

// maxListCacheBytes bounds the encoded answers held, and the instance
// slices they keep alive, all services together.
const maxListCacheBytes = 32 << 20

// listCache is safe for concurrent use.
type listCache struct {
	mu      sync.RWMutex
	entries map[listKey]*listEntry
	bytes   int
}

type listKey struct {
	svc   state.Key
	limit int
}

// size is what e holds in memory, counted against maxListCacheBytes: the
// body, and the slice of the instances it keeps alive.
func (e *listEntry) size() int { return cap(e.body) + 8*cap(e.insts) }

// listEntry is immutable once stored.
type listEntry struct {
	insts   []*state.Instance // the state slice the body shows
	version uint64            // the service's lease version before its leases were read
	built   time.Time         // the clock reading the statuses were computed at
	until   time.Time         // earliest deadline of an instance shown passing; zero: none
	body    []byte
}

// fresh reports whether e is the answer for insts, the service's lease
// version and the time now.
func (e *listEntry) fresh(insts []*state.Instance, version uint64, now time.Time) bool {
	return len(insts) == len(e.insts) && len(insts) > 0 && &insts[0] == &e.insts[0] &&
		version == e.version && !now.Before(e.built) && (e.until.IsZero() || now.Before(e.until))
}

func (c *listCache) get(k listKey) *listEntry {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.entries[k]
}

// put stores e in place of k's entry; over the size bound it first drops
// other entries, whichever the map yields first.
func (c *listCache) put(k listKey, e *listEntry) {
	if e.size() > maxListCacheBytes/4 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = make(map[listKey]*listEntry)
	}
	if old := c.entries[k]; old != nil {
		c.bytes -= old.size()
		delete(c.entries, k)
	}
	for other := range c.entries {
		if c.bytes+e.size() <= maxListCacheBytes {
			break
		}
		c.bytes -= c.entries[other].size()
		delete(c.entries, other)
	}
	c.entries[k] = e
	c.bytes += e.size()
}

// serveCachedList answers an unfiltered first page of k's instances from
// the cache, or builds, caches and answers it. insts and idx are what the
// store returned for k, now the request's clock reading.
func (h *Handler) serveCachedList(w http.ResponseWriter, k state.Key, limit int, insts []*state.Instance, idx uint64, now time.Time) {
	key := listKey{svc: k, limit: limit}
	version := h.leases.ServiceVersion(k.Namespace, k.Name)
	setIndex(w, idx)
	old := h.lists.get(key)
	if old != nil && old.fresh(insts, version, now) {
		writeListBody(w, http.StatusOK, old.body)
		return
	}
	e := &listEntry{insts: insts, version: version, built: now}
	// Only the page is shown: one more tells whether a next page exists.
	shown := insts[:min(len(insts), limit+1)]
	views := make([]listed, len(shown))
	for i, inst := range shown {
		v, deadline := h.lease(inst, now)
		if v.Status == api.StatusPassing && (e.until.IsZero() || deadline.Before(e.until)) {
			e.until = deadline
		}
		views[i] = listed{Instance: v, md: inst.Metadata}
	}
	page, next := paginate(views, limit, "",
		func(v listed, m string) bool { return v.ID > m },
		func(v listed) string { return v.ID })
	// Encoded straight into the entry's own buffer, sized like the last
	// answer of the same list.
	size := 4096
	if old != nil {
		size = len(old.body) + len(old.body)/8
	}
	b, ok := appendInstanceList(make([]byte, 0, size), list(page, limit, next))
	if !ok {
		h.writeInstanceList(w, http.StatusOK, list(page, limit, next)) // falls back as it does
		return
	}
	e.body = b
	h.lists.put(key, e)
	writeListBody(w, http.StatusOK, e.body)
}

// writeListBody answers with an encoded list. The length is sent, so a
// client can read the body into one buffer.
func writeListBody(w http.ResponseWriter, status int, b []byte) {
	hd := w.Header()
	hd.Set("Content-Type", "application/json")
	hd.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
