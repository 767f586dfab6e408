package httpapi

import (
	"net/http"
	"testing"
	"time"
)

// A POST of an id that is registered and live is refused; once that
// registration is past its deadline (its expiry not yet committed), a POST
// of the id takes it over. A new id is registered.
func TestPostTakesOverOnlyADeadRegistration(t *testing.T) {
	f := newCacheFixture(t)
	const path = "/v1/services/acme/web/instances"
	f.do(t, http.MethodPost, path, `{"id":"new","heartbeat_timeout":3}`, http.StatusCreated)
	f.do(t, http.MethodPost, path, `{"id":"new","heartbeat_timeout":3}`, http.StatusConflict)
	f.clk.advance(2 * time.Second)
	f.do(t, http.MethodPost, path, `{"id":"new","heartbeat_timeout":3}`, http.StatusConflict)
	f.clk.advance(2 * time.Second)
	f.do(t, http.MethodPost, path, `{"id":"new","heartbeat_timeout":3}`, http.StatusCreated) // a new registration, not a replacement
	f.do(t, http.MethodPost, path, `{"id":"new","heartbeat_timeout":3}`, http.StatusConflict)
}
