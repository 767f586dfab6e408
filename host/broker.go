package host

import (
	"context"
	"errors"
	"strings"
	"sync"
)

// Message is one message of a topic.
type Message struct {
	Topic string
	Data  []byte
}

// Broker carries topic messages. Subscribe delivers the messages of topic
// (NATS subject syntax: '*' matches one token, '>' the rest) to handler,
// one at a time per subscription, on a goroutine of the broker's. After
// Unsubscribe returns no new delivery begins; a delivery in progress may
// still be running, and the host waits for it. Publish may be called
// from any goroutine.
//
// A Broker that is also a [Backend] is started by the host, and every
// endpoint with a topic exposure needs it (under the backend name
// "broker"), so consumers run only while the broker is ready.
type Broker interface {
	Subscribe(topic string, handler func(Message)) (Subscription, error)
	Publish(ctx context.Context, topic string, data []byte) error
}

// Subscription is one consumer of a [Broker].
type Subscription interface {
	Unsubscribe() error
}

// ErrBrokerClosed is returned by a closed [MemBroker].
var ErrBrokerClosed = errors.New("host: broker closed")

// MemBroker is a [Broker] in process, for tests and single-process setups.
// Like NATS core it keeps nothing: a message published to a topic without a
// subscriber is dropped, and each subscriber gets its own copy. It is safe
// for concurrent use; the zero value is not, use [NewMemBroker].
type MemBroker struct {
	mu     sync.Mutex
	subs   map[*memSub]struct{}
	closed bool
}

// NewMemBroker returns an empty broker.
func NewMemBroker() *MemBroker {
	return &MemBroker{subs: map[*memSub]struct{}{}}
}

type memSub struct {
	b       *MemBroker
	topic   string
	handler func(Message)

	mu     sync.Mutex
	queue  []Message
	wake   chan struct{} // buffered 1: a message was queued, or stop
	closed bool
}

// Subscribe delivers the messages of topic to handler until Unsubscribe.
func (b *MemBroker) Subscribe(topic string, handler func(Message)) (Subscription, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, ErrBrokerClosed
	}
	s := &memSub{b: b, topic: topic, handler: handler, wake: make(chan struct{}, 1)}
	b.subs[s] = struct{}{}
	go s.run()
	return s, nil
}

// Publish queues a copy of data for every subscription whose topic matches.
func (b *MemBroker) Publish(_ context.Context, topic string, data []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrBrokerClosed
	}
	for s := range b.subs {
		if topicMatch(s.topic, topic) {
			s.push(Message{Topic: topic, Data: append([]byte(nil), data...)})
		}
	}
	return nil
}

// Close ends every subscription; later calls fail with ErrBrokerClosed.
func (b *MemBroker) Close() {
	b.mu.Lock()
	subs := b.subs
	b.subs, b.closed = map[*memSub]struct{}{}, true
	b.mu.Unlock()
	for s := range subs {
		s.stop()
	}
}

func (s *memSub) push(m Message) {
	s.mu.Lock()
	if !s.closed {
		s.queue = append(s.queue, m)
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *memSub) run() {
	for range s.wake {
		for {
			s.mu.Lock()
			if s.closed {
				s.mu.Unlock()
				return
			}
			if len(s.queue) == 0 {
				s.mu.Unlock()
				break
			}
			m := s.queue[0]
			s.queue = s.queue[1:]
			s.mu.Unlock()
			s.handler(m)
		}
	}
}

func (s *memSub) stop() {
	s.mu.Lock()
	s.closed, s.queue = true, nil
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Unsubscribe drops the queued messages and ends the subscription.
func (s *memSub) Unsubscribe() error {
	s.b.mu.Lock()
	delete(s.b.subs, s)
	s.b.mu.Unlock()
	s.stop()
	return nil
}

// topicMatch matches a subject against a NATS-style pattern.
func topicMatch(pattern, subject string) bool {
	p, s := strings.Split(pattern, "."), strings.Split(subject, ".")
	for i, tok := range p {
		if tok == ">" {
			return len(s) > i
		}
		if i >= len(s) || (tok != "*" && tok != s[i]) {
			return false
		}
	}
	return len(p) == len(s)
}
