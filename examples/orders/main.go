// Command orders is an example API host: a small order service run by the
// host runtime against a Muster server.
//
//	MUSTER_ADDR  the Muster server (default http://127.0.0.1:7410)
//	ADDR         where to serve HTTP (default 127.0.0.1:8080)
//	NATS_URL     a NATS server for the topics (default: an in-process broker)
//
// It needs the registry service acme/payments (any 1.x revision) to take
// orders; the other endpoints work without it. See README.md.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/muster-registry/muster/client"
	"github.com/muster-registry/muster/host"
	"github.com/muster-registry/muster/host/natsbroker"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(log); err != nil {
		log.Error("orders", "err", err)
		os.Exit(1)
	}
}

// order is one order of the store.
type order struct {
	ID      int    `json:"id"`
	Item    string `json:"item"`
	Shipped bool   `json:"shipped"`
}

// store stands for a database pool: a local backend the host opens.
type store struct {
	mu     sync.Mutex
	orders []order
}

func (s *store) add(item string) order {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := order{ID: len(s.orders) + 1, Item: item}
	s.orders = append(s.orders, o)
	return o
}

func (s *store) list() []order {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.orders)
}

func (s *store) ship(id int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.orders {
		if s.orders[i].ID == id {
			s.orders[i].Shipped = true
			return true
		}
	}
	return false
}

func env(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func run(log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	c, err := client.New(env("MUSTER_ADDR", "http://127.0.0.1:7410"))
	if err != nil {
		return err
	}
	addr := env("ADDR", "127.0.0.1:8080")
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	var broker host.Broker = host.NewMemBroker()
	if u := os.Getenv("NATS_URL"); u != "" {
		broker = natsbroker.New(u) // also a backend: consumers run while connected
	}

	db := &store{}
	backends := map[string]host.Backend{
		"db": host.Local(func(context.Context) error {
			log.Info("db: opened") // a real service would open its pool here
			return nil
		}, func(context.Context) error {
			log.Info("db: closed")
			return nil
		}),
	}

	services := []host.Service{
		{
			Name:     "list-orders",
			Backends: []string{"db"},
			Handler:  func(*http.Request) (any, error) { return db.list(), nil },
			Setup:    []host.Exposure{host.Web("GET", "/orders", renderOrders)},
		},
		{
			Name:     "get-order",
			Backends: []string{"db"},
			Handler: func(r *http.Request) (any, error) {
				id, err := strconv.Atoi(r.PathValue("id"))
				if err != nil {
					return nil, host.Errorf(http.StatusBadRequest, "order id %q is not a number", r.PathValue("id"))
				}
				for _, o := range db.list() {
					if o.ID == id {
						return o, nil
					}
				}
				return nil, host.Errorf(http.StatusNotFound, "no order %d", id)
			},
			Setup: []host.Exposure{host.Web("GET", "/orders/{id}", func(_ *http.Request, data any) (string, error) {
				return renderOrders(nil, []order{data.(order)})
			})},
		},
		{
			// Taking an order needs the payments service of the registry.
			Name:        "create-order",
			Backends:    []string{"db", "acme/payments@^1"},
			Permissions: []string{"orders:write"},
			Handler: func(r *http.Request) (any, error) {
				var in struct {
					Item string `json:"item"`
				}
				if err := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<16)).Decode(&in); err != nil || in.Item == "" {
					return nil, host.Errorf(http.StatusBadRequest, `send {"item": "..."}`)
				}
				o := db.add(in.Item)
				if err := broker.Publish(r.Context(), "orders.created", []byte(strconv.Itoa(o.ID))); err != nil {
					return nil, err
				}
				return o, nil
			},
			Setup: []host.Exposure{host.Web("POST", "/orders", nil)},
		},
		{
			Name:     "ship-order",
			Backends: []string{"db"},
			Handler: func(r *http.Request) (any, error) {
				id, _ := strconv.Atoi(string(host.CallOf(r).Message.Data))
				if !db.ship(id) {
					return nil, fmt.Errorf("no order %d to ship", id)
				}
				log.Info("shipped", "order", id)
				return nil, nil
			},
			Setup: []host.Exposure{host.Topic("orders.created")},
		},
		{
			Name:     "report",
			Backends: []string{"db"},
			Handler: func(*http.Request) (any, error) {
				log.Info("report", "orders", len(db.list()))
				return nil, nil
			},
			Setup: []host.Exposure{host.Cron("@every 1m")},
		},
		{
			Name:    "health",
			Handler: func(*http.Request) (any, error) { return map[string]string{"status": "ok"}, nil },
			Setup:   []host.Exposure{host.Web("ANY", "/health", nil)},
		},
		{
			Name:    "index",
			Handler: func(r *http.Request) (any, error) { return r.URL.Path, nil },
			Setup: []host.Exposure{host.WebFallback(func(_ *http.Request, data any) (string, error) {
				return "<!DOCTYPE html><p>Nothing at " + html.EscapeString(data.(string)) +
					`. Try <a href="/orders">/orders</a> or <a href="/_muster/state">the host's state</a>.</p>`, nil
			})},
		},
	}

	port := ln.Addr().(*net.TCPAddr).Port
	h := host.New(host.Options{
		Client: c, Namespace: "shop", ServiceName: "orders",
		InstanceID: "orders-" + strconv.Itoa(port), RevisionTag: "1.0.0",
		Address: "127.0.0.1", Port: port, PublicURL: "http://" + ln.Addr().String(),
		HeartbeatTimeout: 15 * time.Second,
		Backends:         backends, Broker: broker, Logger: log,
	})
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	if err := h.Start(ctx, services); err != nil {
		_ = h.Stop(context.Background())
		return err
	}
	log.Info("orders: serving", "addr", ln.Addr().String(), "state", "http://"+ln.Addr().String()+host.StatePath)

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		return err
	}
	// Deregister and drain first (routes answer 404 once removed), then
	// close the listener.
	shutdown, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = h.Stop(shutdown)
	if serr := srv.Shutdown(shutdown); serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}

// renderOrders renders a list of orders as an HTML page.
func renderOrders(_ *http.Request, data any) (string, error) {
	orders, ok := data.([]order)
	if !ok {
		return "", fmt.Errorf("render: %T is not a list of orders", data)
	}
	var b strings.Builder
	b.WriteString("<!DOCTYPE html><title>Orders</title><ul>")
	for _, o := range orders {
		state := "open"
		if o.Shipped {
			state = "shipped"
		}
		fmt.Fprintf(&b, "<li>#%d %s (%s)</li>", o.ID, html.EscapeString(o.Item), state)
	}
	b.WriteString("</ul>")
	return b.String(), nil
}
