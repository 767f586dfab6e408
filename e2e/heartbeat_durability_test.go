package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
)

// TestConcurrentHeartbeatsSurviveSIGKILL has many clients heartbeat at once,
// singly and in batches, so that their token rotations share journal
// writes; then kills the server with SIGKILL (the journal was written, not
// fsync'd) and restarts it. Every acknowledged rotation must have survived:
// each instance takes its last token and none of the spent ones.
func TestConcurrentHeartbeatsSurviveSIGKILL(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOpts{})
	const clients, rounds = 24, 20
	ids := make([]string, clients)
	current := make([]string, clients)
	for i := range ids {
		ids[i] = fmt.Sprintf("hb-%02d", i)
		current[i] = s.register(t, "kill", "beats", map[string]any{"id": ids[i], "heartbeat_timeout": 60}).Token
	}
	spent := make([][]string, clients)
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			for r := range rounds {
				next, err := rotate(s.URL, ids[c], current[c], r%2 == 1)
				if err != nil {
					t.Errorf("client %d, round %d: %v", c, r, err)
					return
				}
				spent[c] = append(spent[c], current[c])
				current[c] = next
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	s.Kill()
	s = s.restart(t)
	for c, id := range ids {
		for _, tok := range spent[c] {
			s.heartbeat(t, "kill", "beats", id, tok).wantError(t, http.StatusConflict, "token_mismatch", "")
		}
		s.beat(t, "kill", "beats", id, current[c])
	}
	s.Stop()
}

// rotate renews one instance of kill/beats, with a heartbeat or a batch of
// one in the compact form SDKs send, and returns the next token.
func rotate(base, id, token string, batch bool) (string, error) {
	if !batch {
		r, err := send("POST", base+instPath("kill", "beats", id)+"/heartbeat", `{"token":"`+token+`"}`)
		if err != nil || r.Status != http.StatusOK {
			return "", fmt.Errorf("heartbeat: %v %v", r, err)
		}
		var hb heartbeatReply
		if err := json.Unmarshal(r.Body, &hb); err != nil || hb.Token == "" {
			return "", fmt.Errorf("%s: %v", r, err)
		}
		return hb.Token, nil
	}
	body := `{"heartbeats":[{"namespace":"kill","service":"beats","id":"` + id + `","token":"` + token + `"}]}`
	r, err := send("POST", base+"/heartbeats", body)
	if err != nil || r.Status != http.StatusOK {
		return "", fmt.Errorf("batch: %v %v", r, err)
	}
	var out struct {
		Results []struct {
			Token string          `json:"token"`
			Error json.RawMessage `json:"error"`
		} `json:"results"`
	}
	if err := json.Unmarshal(r.Body, &out); err != nil || len(out.Results) != 1 || out.Results[0].Token == "" {
		return "", fmt.Errorf("%s: %v", r, err)
	}
	return out.Results[0].Token, nil
}
