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
	_, err := c.do(ctx, request{method: http.MethodPost, path: "/heartbeats", body: api.BatchHeartbeatRequest{Heartbeats: beats}, out: &out})
	return out.Results, err
}
