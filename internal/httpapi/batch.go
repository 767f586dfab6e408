package httpapi

import (
	"bytes"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/muster-registry/muster/api"
	"github.com/muster-registry/muster/internal/lease"
	"github.com/muster-registry/muster/internal/registry"
	"github.com/muster-registry/muster/internal/state"
)

// heartbeats serves POST /v1/heartbeats: many heartbeats in one request,
// each answered on its own (a bad or refused one does not fail the others),
// with one journal write for the batch.
func (h *Handler) heartbeats(w http.ResponseWriter, r *http.Request) {
	buf := h.bufs.get()
	defer h.bufs.put(buf)
	sc := h.batches.get()
	defer h.batches.put(sc)
	var req api.BatchHeartbeatRequest
	if err := h.batchBody(r, buf, sc, &req); err != nil {
		h.writeError(w, r, err)
		return
	}
	n := len(req.Heartbeats)
	if n == 0 || n > api.MaxBatchHeartbeats {
		h.writeError(w, r, registry.Invalid("heartbeats", "give 1 to %d heartbeats, not %d", api.MaxBatchHeartbeats, n))
		return
	}
	results := slices.Grow(sc.results[:0], n)[:n]
	beats := slices.Grow(sc.beats[:0], n)
	pos := slices.Grow(sc.pos[:0], n) // position in results of each beat
	for i, b := range req.Heartbeats {
		k := state.InstanceKey{Namespace: b.Namespace, Service: b.Service, ID: b.ID}
		err := registry.ValidateService(k.Namespace, k.Service)
		if err == nil {
			err = registry.ValidateInstanceID(k.ID)
		}
		if err == nil && b.Token == "" {
			err = registry.Invalid("token", "is required")
		}
		if err != nil {
			results[i].Error = itemError(err)
			continue
		}
		beats = append(beats, lease.Beat{Key: k, Token: b.Token})
		pos = append(pos, i)
	}
	renewals := h.leases.AppendHeartbeatBatch(sc.renewals[:0], beats)
	sc.results, sc.beats, sc.pos, sc.renewals = results, beats, pos, renewals
	renewed := 0
	for j, rn := range renewals {
		i := pos[j]
		if rn.Err != nil {
			if h.metrics != nil {
				h.metrics.heartbeat(rn.Err)
			}
			results[i].Error = itemError(rn.Err)
			if results[i].Error.Type == api.ErrInternal {
				h.log.Error("batch heartbeat failed", "request_id", w.Header().Get(api.HeaderRequestID), "instance", beats[j].Key.String(), "err", rn.Err)
			}
			continue
		}
		renewed++
		results[i] = api.BatchHeartbeatResult{Token: rn.Token, ExpiresAt: rn.Deadline.UTC().Truncate(time.Millisecond)}
	}
	if h.metrics != nil {
		h.metrics.heartbeatsRenewed(renewed)
	}
	b, ok := appendBatchAnswer((*buf)[:0], results)
	if !ok {
		writeJSON(w, http.StatusOK, api.BatchHeartbeatResponse{Results: results})
		return
	}
	*buf = b
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// batchScratch is the memory of one batch request, reused by later ones.
type batchScratch struct {
	heartbeats []api.BatchHeartbeat
	beats      []lease.Beat
	pos        []int
	results    []api.BatchHeartbeatResult
	renewals   []lease.Renewal
}

// batchPool recycles batchScratch values.
type batchPool struct{ p sync.Pool }

func (p *batchPool) get() *batchScratch {
	if sc, ok := p.p.Get().(*batchScratch); ok {
		return sc
	}
	return new(batchScratch)
}

// put clears what sc holds (the strings and errors of the batch are not
// kept alive by the pool) and keeps it unless an oversized body grew it.
func (p *batchPool) put(sc *batchScratch) {
	if cap(sc.heartbeats) > 2*api.MaxBatchHeartbeats {
		return
	}
	clear(sc.heartbeats[:cap(sc.heartbeats)])
	clear(sc.beats[:cap(sc.beats)])
	clear(sc.results[:cap(sc.results)])
	clear(sc.renewals[:cap(sc.renewals)])
	p.p.Put(sc)
}

// batchBody reads a batch's body into buf (reused) and req: by hand in the
// compact form SDKs send, else strictly decoded.
func (h *Handler) batchBody(r *http.Request, buf *[]byte, sc *batchScratch, req *api.BatchHeartbeatRequest) error {
	body, err := readBody(r, (*buf)[:0])
	*buf = body
	if err != nil {
		return err
	}
	// The compact form closes each heartbeat and the body with '}': room
	// for all (a count of one byte is far cheaper than of a word), but never
	// more than a batch may hold: the body is the client's.
	if beats, ok := parseBatch(body, slices.Grow(sc.heartbeats[:0], min(bytes.Count(body, []byte("}")), api.MaxBatchHeartbeats+1))); ok {
		sc.heartbeats = beats
		req.Heartbeats = beats
		return nil
	}
	_, err = decodeBody(body, req)
	return err
}

// itemError is the error shape of one item of a batch; internal errors stay hidden.
func itemError(err error) *api.Error {
	_, body, _ := answer(err)
	return &body
}
