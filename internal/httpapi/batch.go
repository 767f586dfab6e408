package httpapi

import (
	"bytes"
	"net/http"
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
	var req api.BatchHeartbeatRequest
	if err := h.batchBody(r, buf, &req); err != nil {
		h.writeError(w, r, err)
		return
	}
	n := len(req.Heartbeats)
	if n == 0 || n > api.MaxBatchHeartbeats {
		h.writeError(w, r, registry.Invalid("heartbeats", "give 1 to %d heartbeats, not %d", api.MaxBatchHeartbeats, n))
		return
	}
	results := make([]api.BatchHeartbeatResult, n)
	beats := make([]lease.Beat, 0, n)
	pos := make([]int, 0, n) // position in results of each beat
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
	for j, rn := range h.leases.HeartbeatBatch(beats) {
		i := pos[j]
		if h.metrics != nil {
			h.metrics.heartbeat(rn.Err)
		}
		if rn.Err != nil {
			results[i].Error = itemError(rn.Err)
			if results[i].Error.Type == api.ErrInternal {
				h.log.Error("batch heartbeat failed", "request_id", w.Header().Get(api.HeaderRequestID), "instance", beats[j].Key.String(), "err", rn.Err)
			}
			continue
		}
		results[i] = api.BatchHeartbeatResult{Token: rn.Token, ExpiresAt: rn.Deadline.UTC().Truncate(time.Millisecond)}
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

// batchBody reads a batch's body into buf (reused) and req: by hand in the
// compact form SDKs send, else strictly decoded.
func (h *Handler) batchBody(r *http.Request, buf *[]byte, req *api.BatchHeartbeatRequest) error {
	body, err := readBody(r, (*buf)[:0])
	*buf = body
	if err != nil {
		return err
	}
	// The compact form closes each heartbeat and the body with '}': room
	// for all (a count of one byte is far cheaper than of a word).
	if beats, ok := parseBatch(body, make([]api.BatchHeartbeat, 0, bytes.Count(body, []byte("}")))); ok {
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
