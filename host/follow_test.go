package host

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/muster-registry/muster/api"
	"github.com/muster-registry/muster/client"
	"github.com/muster-registry/muster/internal/servertest"
)

// compactingProxy sits between a host and the registry. It answers the
// host's first poll of service.update events with 410 events_compacted, and
// when the host then reads its definition, it has change edit the stored
// definition after that read and before the host gets the answer: a change
// the host can only learn of by following from the index of what it read.
type compactingProxy struct {
	next   http.Handler
	change func()

	mu        sync.Mutex
	compacted bool // the 410 has been sent
	changed   bool // change has run
}

func (p *compactingProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	first410 := !p.compacted && r.URL.Path == "/v1/events" && strings.Contains(r.URL.RawQuery, api.EventServiceUpdate)
	p.compacted = p.compacted || first410
	afterRead := p.compacted && !p.changed && r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/definition")
	p.changed = p.changed || afterRead
	p.mu.Unlock()
	if first410 {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusGone)
		_, _ = w.Write([]byte(`{"error":"Events compacted.","type":"events_compacted","details":"test","request_id":"t"}` + "\n"))
		return
	}
	if !afterRead {
		p.next.ServeHTTP(w, r)
		return
	}
	rec := httptest.NewRecorder()
	p.next.ServeHTTP(rec, r)
	p.change()
	for k, vs := range rec.Header() {
		w.Header()[k] = vs
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

// TestFollowAfterCompactionMissesNoChange: after a 410 the host reads the
// stored definition and follows the feed from the index of that read. A
// change made just after the read is applied too (following from a later
// read's index would skip it).
func TestFollowAfterCompactionMissesNoChange(t *testing.T) {
	srv := servertest.Start(t, servertest.Options{})
	direct, err := client.New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	target, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ErrorLog = log.New(io.Discard, "", 0) // the host's last long poll is cut short at Stop
	tr := http.DefaultTransport.(*http.Transport).Clone()
	rp.Transport = tr
	t.Cleanup(tr.CloseIdleConnections)
	proxy := &compactingProxy{next: rp}
	proxy.change = func() {
		def, _, err := direct.GetDefinition(ctx, "shop", "orders")
		if err != nil {
			t.Error(err)
			return
		}
		def.Endpoints[0].Exposures = []api.Exposure{{Type: "http", Method: "GET", Path: "/all-orders"}}
		if _, err := direct.PutDefinition(ctx, "shop", "orders", def); err != nil {
			t.Error(err)
		}
	}
	front := httptest.NewServer(proxy)
	t.Cleanup(front.Close)
	c, err := client.New(front.URL)
	if err != nil {
		t.Fatal(err)
	}
	services := []Service{{Name: "list", Handler: func(*http.Request) (any, error) { return "list", nil },
		Setup: []Exposure{Web("GET", "/orders", text("orders: %v"))}}}
	h := startHost(t, Options{Client: c, Namespace: "shop", ServiceName: "orders", HeartbeatTimeout: 10 * time.Second,
		Watch: client.WatcherOptions{Wait: 5 * time.Second}}, services)
	eventually(t, "the change made after the host's read is served", 10*time.Second, func() bool {
		w := do(h, "GET", "/all-orders", "")
		return w.Code == 200 && w.Body.String() == "orders: list"
	})
	proxy.mu.Lock()
	defer proxy.mu.Unlock()
	if !proxy.compacted || !proxy.changed {
		t.Fatalf("the proxy sent the 410: %v; made the change: %v", proxy.compacted, proxy.changed)
	}
}
