package client

import (
	"context"
	"net/http"

	"github.com/muster-registry/muster/api"
)

// HeartbeatBatch sends many heartbeats in one request (POST /v1/heartbeats,
// at most api.MaxBatchHeartbeats). Each is answered on its own, in order: a
// result with Error set failed alone (its Error.Type says why, as for
// Heartbeat) while the others renewed. The returned error is for the
// request as a whole.
func (c *Client) HeartbeatBatch(ctx context.Context, beats []api.BatchHeartbeat) ([]api.BatchHeartbeatResult, error) {
	var out api.BatchHeartbeatResponse
	r := request{method: http.MethodPost, path: "/heartbeats", out: &out,
		fast: func(b []byte) bool { return parseBatchAnswer(b, &out, len(beats)) }}
	if raw, ok := batchBody(beats); ok {
		r.raw = raw
	} else {
		r.body = api.BatchHeartbeatRequest{Heartbeats: beats}
	}
	_, err := c.do(ctx, r)
	return out.Results, err
}
