// Package natsbroker is a [host.Broker] on NATS core (github.com/nats-io/nats.go).
//
// A [Broker] is also a [host.Backend]: given as Options.Broker, the host
// connects it when the first topic consumer is needed, and the consumers run
// only while the connection is up (the host disables their endpoints while
// it reconnects). It lives in a package of its own so that the host package
// does not make its users depend on the NATS client.
package natsbroker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/muster-registry/muster/host"
)

// ErrNotConnected is returned by Subscribe and Publish before Start.
var ErrNotConnected = errors.New("natsbroker: not connected")

// Broker carries topic messages over one NATS connection. It is safe for
// concurrent use. NATS core keeps nothing: a message published while no
// consumer is subscribed is dropped.
type Broker struct {
	host.ReadyState
	url  string
	opts []nats.Option

	mu sync.Mutex
	nc *nats.Conn
}

// New returns a broker of the NATS server(s) at url (nats.Connect's syntax);
// it connects at Start. opts are passed to nats.Connect, before the
// broker's own: it reconnects forever and sets the connection handlers.
func New(url string, opts ...nats.Option) *Broker {
	return &Broker{url: url, opts: opts}
}

// Start connects. A server that is not up yet is retried in the background
// (the broker is ready once connected); a bad URL or option is an error.
func (b *Broker) Start(context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.nc != nil {
		return errors.New("natsbroker: started twice")
	}
	opts := append(append([]nats.Option(nil), b.opts...),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ConnectHandler(func(*nats.Conn) { b.Set(true) }),
		nats.ReconnectHandler(func(*nats.Conn) { b.Set(true) }),
		nats.DisconnectErrHandler(func(*nats.Conn, error) { b.Set(false) }),
		nats.ClosedHandler(func(*nats.Conn) { b.Set(false) }),
	)
	nc, err := nats.Connect(b.url, opts...)
	if err != nil {
		return fmt.Errorf("natsbroker: %w", err)
	}
	b.nc = nc
	// The connect handler does not run for a connection made at once.
	if nc.IsConnected() {
		b.Set(true)
	}
	return nil
}

// Stop flushes what was published (within ctx, or 5s when ctx has no
// deadline) and closes the connection.
func (b *Broker) Stop(ctx context.Context) error {
	b.mu.Lock()
	nc := b.nc
	b.nc = nil
	b.mu.Unlock()
	if nc == nil {
		return nil
	}
	if _, ok := ctx.Deadline(); !ok {
		// nats.go refuses a flush without a deadline.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
	}
	err := nc.FlushWithContext(ctx)
	nc.Close()
	b.Set(false)
	if errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrConnectionReconnecting) {
		err = nil
	}
	return err
}

// Conn answers the connection, nil outside Start and Stop.
func (b *Broker) Conn() *nats.Conn {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.nc
}

// Subscribe delivers the messages of the subject topic to handler, one at a
// time, on the subscription's goroutine.
func (b *Broker) Subscribe(topic string, handler func(host.Message)) (host.Subscription, error) {
	nc := b.Conn()
	if nc == nil {
		return nil, ErrNotConnected
	}
	sub, err := nc.Subscribe(topic, func(m *nats.Msg) {
		handler(host.Message{Topic: m.Subject, Data: m.Data})
	})
	if err != nil {
		return nil, fmt.Errorf("natsbroker: subscribing to %q: %w", topic, err)
	}
	return sub, nil
}

// Publish sends data on the subject topic. It does not wait for the server;
// Stop flushes.
func (b *Broker) Publish(_ context.Context, topic string, data []byte) error {
	nc := b.Conn()
	if nc == nil {
		return ErrNotConnected
	}
	if err := nc.Publish(topic, data); err != nil {
		return fmt.Errorf("natsbroker: publishing to %q: %w", topic, err)
	}
	return nil
}

var (
	_ host.Broker  = (*Broker)(nil)
	_ host.Backend = (*Broker)(nil)
)
