package client_test

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/muster-registry/muster/api"
	"github.com/muster-registry/muster/client"
	"github.com/muster-registry/muster/server"
)

// A service registers itself and keeps its registration alive until it
// shuts down.
func ExampleHeartbeater() {
	srv := startExampleServer() // stands in for a Muster server
	defer srv.Close()

	c, err := client.New(srv.URL, client.WithToken("…"))
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	hb := client.NewHeartbeater(c, "acme", "web", api.RegisterInstanceRequest{
		ID:               "web-1", // a restarted process takes its id back
		Address:          "10.0.0.7",
		Port:             8080,
		HeartbeatTimeout: 30,
	}, client.HeartbeaterOptions{
		OnEvent: func(ev client.HeartbeatEvent) {
			switch ev.Kind {
			case client.HeartbeatRegistered, client.HeartbeatDeregistered:
				fmt.Println(ev.Kind, ev.Instance.ID)
			case client.HeartbeatConflict:
				log.Printf("another process took our id: %v", ev.Err)
			}
		},
	})
	if err := hb.Start(ctx); err != nil {
		log.Fatal(err)
	}

	// … serve until it is time to shut down …

	stopCtx, stopCancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer stopCancel()
	if err := hb.Stop(stopCtx); err != nil {
		log.Print(err)
	}
	// Output:
	// registered web-1
	// deregistered web-1
}

// A caller finds the passing instances of a service, with a tag.
func ExampleClient_ListInstances() {
	srv := startExampleServer()
	defer srv.Close()
	srv.add("web-2", "canary")
	srv.add("web-1", "canary")
	srv.add("web-3")

	c, err := client.New(srv.URL)
	if err != nil {
		log.Fatal(err)
	}
	list, index, err := c.ListInstances(context.Background(), "acme", "web", client.InstanceListOptions{
		Tags:   []string{"canary"},
		Status: api.StatusPassing,
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, in := range list.Values {
		fmt.Printf("%s at %s:%d\n", in.ID, in.Address, in.Port)
	}
	fmt.Println("as of event", index)
	// Output:
	// web-1 at 10.0.0.1:8080
	// web-2 at 10.0.0.2:8080
	// as of event 3
}

// Errors match the API's error types with errors.Is.
func ExampleClient_GetInstance() {
	srv := startExampleServer()
	defer srv.Close()

	c, err := client.New(srv.URL)
	if err != nil {
		log.Fatal(err)
	}
	_, _, err = c.GetInstance(context.Background(), "acme", "web", "web-9")
	if errors.Is(err, client.ErrNotFound) {
		fmt.Println("web-9 is not registered")
	}
	var apiErr *client.APIError
	if errors.As(err, &apiErr) {
		fmt.Println(apiErr.StatusCode, apiErr.Type)
	}
	// Output:
	// web-9 is not registered
	// 404 not_found
}

// A caller keeps a local copy of a service's instances and reacts to
// changes, without a round trip per read.
func ExampleWatcher() {
	srv := startExampleServer()
	defer srv.Close()
	srv.add("web-1")

	c, err := client.New(srv.URL)
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := client.NewWatcher(c, "acme", "web", client.WatcherOptions{})
	go func() { _ = w.Run(ctx) }()
	<-w.Ready()

	snap := w.Snapshot()
	fmt.Println(instanceIDs(snap.Instances))

	srv.add("web-2") // another process registers
	<-snap.Changed
	fmt.Println(instanceIDs(w.Instances()))
	// Output:
	// [web-1]
	// [web-1 web-2]
}

func instanceIDs(insts []api.Instance) []string {
	var ids []string
	for _, in := range insts {
		ids = append(ids, in.ID)
	}
	return ids
}

// exampleServer stands in for a Muster server in the examples: the instance
// routes of acme/web and the events feed, in memory, without expiry.
type exampleServer struct {
	*httptest.Server
	mu        sync.Mutex
	instances map[string]api.Instance
	events    []api.Event
	changed   chan struct{} // closed at the next event
}

func startExampleServer() *exampleServer {
	s := &exampleServer{instances: map[string]api.Instance{}, changed: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /v1/services/acme/web/instances/{id}", func(w http.ResponseWriter, r *http.Request) {
		var req api.RegisterInstanceRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		inst := s.put(api.Instance{ID: r.PathValue("id"), Address: req.Address, Port: req.Port, HeartbeatTimeout: req.HeartbeatTimeout})
		reply(w, http.StatusCreated, api.Registration{Instance: inst, Token: "t1"})
	})
	mux.HandleFunc("POST /v1/services/acme/web/instances/{id}/heartbeat", func(w http.ResponseWriter, r *http.Request) {
		reply(w, http.StatusOK, api.HeartbeatResponse{Token: "t2", ExpiresAt: time.Now().Add(30 * time.Second)})
	})
	mux.HandleFunc("DELETE /v1/services/acme/web/instances/{id}", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		delete(s.instances, r.PathValue("id"))
		s.eventLocked(api.EventInstanceRemove, api.InstanceRemovedPayload{ID: r.PathValue("id")})
		s.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /v1/services/acme/web/instances/{id}", func(w http.ResponseWriter, r *http.Request) {
		reply(w, http.StatusNotFound, api.Error{Error: "Instance not found.", Type: api.ErrNotFound})
	})
	mux.HandleFunc("GET /v1/services/acme/web/instances", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		var out []api.Instance
		for _, id := range slices.Sorted(maps.Keys(s.instances)) {
			if in := s.instances[id]; len(r.URL.Query()["tag"]) == 0 || slices.Contains(in.Tags, r.URL.Query().Get("tag")) {
				out = append(out, in)
			}
		}
		w.Header().Set(api.HeaderIndex, strconv.Itoa(len(s.events)))
		reply(w, http.StatusOK, api.List[api.Instance]{Values: out, Metadata: api.ListMetadata{Count: len(out), Limit: 1000}})
	})
	mux.HandleFunc("GET /v1/events", func(w http.ResponseWriter, r *http.Request) {
		after, _ := strconv.Atoi(r.URL.Query().Get("after"))
		for {
			s.mu.Lock()
			evs, changed := s.events[min(after, len(s.events)):], s.changed
			s.mu.Unlock()
			if len(evs) > 0 {
				reply(w, http.StatusOK, api.EventList{Events: evs, Next: evs[len(evs)-1].ID})
				return
			}
			select {
			case <-changed:
			case <-r.Context().Done():
				return
			}
		}
	})
	s.Server = httptest.NewServer(mux)
	return s
}

// add registers an instance of acme/web with an address of its number.
func (s *exampleServer) add(id string, tags ...string) {
	n, _ := strconv.Atoi(id[len(id)-1:])
	s.put(api.Instance{ID: id, Address: fmt.Sprintf("10.0.0.%d", n), Port: 8080, Tags: tags})
}

func (s *exampleServer) put(in api.Instance) api.Instance {
	in.Namespace, in.Service, in.Status = "acme", "web", api.StatusPassing
	in.HeartbeatTimeout = cmp.Or(in.HeartbeatTimeout, api.DefaultHeartbeatTimeout)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.instances[in.ID] = in
	s.eventLocked(api.EventInstanceJoin, in)
	return in
}

func (s *exampleServer) eventLocked(typ string, payload any) {
	b, _ := json.Marshal(payload)
	id := uint64(len(s.events) + 1)
	s.events = append(s.events, api.Event{ID: id, Type: typ, Namespace: "acme", Service: "web", Payload: b})
	close(s.changed)
	s.changed = make(chan struct{})
}

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// A gateway asks once where a caller's request should go: the revision the
// service's policy picks for it, and that revision's passing instances.
func ExampleClient_Resolve() {
	addr, stop := startDevServer() // a real server, in memory
	defer stop()
	c, err := client.New(addr)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	seedBeta(ctx, c)
	_, err = c.SetPolicy(ctx, "acme", "web", api.Policy{
		Routes: []api.PolicyRoute{{
			Name:     "beta",
			Match:    &api.PolicyMatch{Headers: map[string]string{"X-Channel": "beta"}},
			Revision: "2.0.0-beta.1",
		}},
	})
	if err != nil {
		log.Fatal(err)
	}

	res, _, err := c.Resolve(ctx, "acme", "web", client.ResolveOptions{
		Requester: "search",
		Headers:   http.Header{"X-Channel": {"beta"}},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s by route %q: %v\n", res.Revision.RevisionTag, res.Route, instanceIDs(res.Instances))
	// Output:
	// 2.0.0-beta.1 by route "beta": [web-b]
}

// A gateway keeps, for each of its callers, where their requests should go,
// and follows policy changes without a round trip per request.
func ExampleResolver() {
	addr, stop := startDevServer()
	defer stop()
	c, err := client.New(addr)
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	seedBeta(ctx, c)

	r := client.NewResolver(c, "acme", "web", client.ResolverOptions{},
		client.ResolveOptions{Requester: "billing"},
		client.ResolveOptions{Requester: "search", Headers: http.Header{"X-Channel": {"beta"}}},
	)
	go func() { _ = r.Run(ctx) }()
	<-r.Ready()
	snap := r.Snapshot()
	printResolutions(snap)

	// An operator opens the beta channel; the resolver follows.
	_, err = c.SetPolicy(ctx, "acme", "web", api.Policy{
		Routes: []api.PolicyRoute{{
			Name:     "beta",
			Match:    &api.PolicyMatch{Headers: map[string]string{"X-Channel": "beta"}},
			Revision: "2.0.0-beta.1",
		}},
	})
	if err != nil {
		log.Fatal(err)
	}
	<-snap.Changed
	printResolutions(r.Snapshot())

	// Reads make no round trip.
	res, err := r.ResolveFor("search")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("search goes to", res.Instances[0].Address)
	// Output:
	// billing: 1.0.0 [web-1]
	// search: 1.0.0 [web-1]
	// billing: 1.0.0 [web-1]
	// search: 2.0.0-beta.1 by route beta [web-b]
	// search goes to 10.0.0.2
}

func printResolutions(snap client.ResolverSnapshot) {
	for _, x := range snap.Results {
		if x.Err != nil {
			fmt.Printf("%s: %v\n", x.Request.Requester, x.Err)
			continue
		}
		route := ""
		if x.Resolution.Route != "" {
			route = " by route " + x.Resolution.Route
		}
		fmt.Printf("%s: %s%s %v\n", x.Request.Requester, x.Resolution.Revision.RevisionTag, route, instanceIDs(x.Resolution.Instances))
	}
}

// seedBeta registers acme/web 1.0.0 (the default) and 2.0.0-beta.1 (not the
// default), with one instance each.
func seedBeta(ctx context.Context, c *client.Client) {
	no := false
	for _, rev := range []api.RegisterRevisionRequest{{RevisionTag: "1.0.0"}, {RevisionTag: "2.0.0-beta.1", IsDefault: &no}} {
		if _, err := c.RegisterRevision(ctx, "acme", "web", rev); err != nil {
			log.Fatal(err)
		}
	}
	for id, in := range map[string]api.RegisterInstanceRequest{
		"web-1": {RevisionTag: "1.0.0", Address: "10.0.0.1", Port: 8080},
		"web-b": {RevisionTag: "2.0.0-beta.1", Address: "10.0.0.2", Port: 8080},
	} {
		if _, err := c.PutInstance(ctx, "acme", "web", id, in); err != nil {
			log.Fatal(err)
		}
	}
}

// startDevServer runs a real Muster server in memory, as "muster serve
// --dev" does, on a free loopback port, and answers its address and a
// function that stops it.
func startDevServer() (string, func()) {
	srv, err := server.New(server.Config{HTTPAddr: "127.0.0.1:0", Dev: true, NodeID: "example"})
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	select {
	case <-srv.Ready():
	case err := <-done:
		log.Fatalf("server stopped before it was ready: %v", err)
	}
	return "http://" + srv.Addr(), func() { cancel(); <-done }
}
