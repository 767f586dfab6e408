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
