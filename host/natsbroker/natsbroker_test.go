package natsbroker_test

import (
	"context"
	"net"
	"net/http"
	"os/exec"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/muster-registry/muster/host"
	"github.com/muster-registry/muster/host/natsbroker"
)

// startNATS runs nats-server on a free loopback port until the test ends.
// CI installs the binary (.ci/run); elsewhere the test skips without it.
func startNATS(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		t.Fatal("nats-server is not on PATH: scripts/test.sh installs it (apt-get install nats-server)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(bin, "-a", "127.0.0.1", "-p", strconv.Itoa(port))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	addr := "127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return "nats://" + addr
		}
		if time.Now().After(deadline) {
			t.Fatal("nats-server did not listen within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("after 5s: " + what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestConsumerOnlyWhileEnabled(t *testing.T) {
	url := startNATS(t)
	b := natsbroker.New(url)
	db := host.Local(func(context.Context) error { return nil }, nil)
	got := make(chan string, 16)
	h := host.New(host.Options{Broker: b, Backends: map[string]host.Backend{"db": db}})
	err := h.Start(t.Context(), []host.Service{{
		Name: "ship", Backends: []string{"db"}, Setup: []host.Exposure{host.Topic("orders.>")},
		Handler: func(r *http.Request) (any, error) {
			m := host.CallOf(r).Message
			got <- m.Topic + " " + string(m.Data)
			return nil, nil
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := h.Stop(context.Background()); err != nil {
			t.Error(err)
		}
	}()
	consuming := func(want bool) func() bool {
		return func() bool {
			st := h.State()
			return len(st.Endpoints) == 1 && st.Endpoints[0].Exposures[0].Consuming == want
		}
	}
	publish := func(topic, data string) {
		t.Helper()
		if err := b.Publish(t.Context(), topic, []byte(data)); err != nil {
			t.Fatal(err)
		}
		// The subscription and the publication share the connection, so the
		// server sees them in order; the flush waits for it to have both.
		if err := b.Conn().Flush(); err != nil {
			t.Fatal(err)
		}
	}
	receive := func() string {
		t.Helper()
		select {
		case m := <-got:
			return m
		case <-time.After(5 * time.Second):
			t.Fatal("no message within 5s")
			return ""
		}
	}

	// The broker is an implicit backend of the consumer.
	eventually(t, "the consumer subscribed", consuming(true))
	if st := h.State(); !slices.Equal(st.Endpoints[0].Backends, []string{"db", host.BrokerBackend}) {
		t.Errorf("backends: %v", st.Endpoints[0].Backends)
	}
	publish("orders.created", "1")
	if m := receive(); m != "orders.created 1" {
		t.Fatalf("got %q", m)
	}

	db.SetReady(false)
	eventually(t, "the consumer left", consuming(false))
	publish("orders.created", "while disabled")
	db.SetReady(true)
	eventually(t, "the consumer is back", consuming(true))
	publish("orders.shipped", "2")
	if m := receive(); m != "orders.shipped 2" {
		t.Fatalf("got %q, want only the message published while enabled", m)
	}
	select {
	case m := <-got:
		t.Fatalf("unexpected message %q", m)
	case <-time.After(100 * time.Millisecond):
	}
}

func TestNotConnected(t *testing.T) {
	b := natsbroker.New("nats://127.0.0.1:1")
	if _, err := b.Subscribe("x", func(host.Message) {}); err != natsbroker.ErrNotConnected {
		t.Errorf("Subscribe before Start: %v", err)
	}
	if err := b.Publish(context.Background(), "x", nil); err != natsbroker.ErrNotConnected {
		t.Errorf("Publish before Start: %v", err)
	}
}
