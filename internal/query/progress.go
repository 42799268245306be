package query

import (
	"fmt"
	"sync"

	"github.com/nats-io/nats.go"

	"github.com/engram-memory/engram/internal/stream"
)

// Progress turns the projectors' progress notifications (stream.ProgressRoot) into wake-ups
// for WaitFor: a read waiting for a consistency token reads the partition's checkpoint again
// as soon as the projector says it committed, instead of at its next poll. The checkpoint in
// the graph still decides; a lost notification costs a poll interval.
type Progress struct {
	mu    sync.Mutex
	wake  map[int]chan struct{} // closed at the next notification of the partition
	sub   *nats.Subscription
	group string
}

// NewProgress returns a Progress that no notification reaches yet; Subscribe starts them.
func NewProgress(group string) *Progress {
	return &Progress{wake: map[int]chan struct{}{}, group: group}
}

// Subscribe receives group's notifications on nc until Close.
func (p *Progress) Subscribe(nc *nats.Conn) error {
	sub, err := nc.Subscribe(stream.ProgressFilter(p.group), func(m *nats.Msg) {
		if part, _, ok := stream.ParseProgress(m.Subject, m.Data); ok {
			p.notify(part)
		}
	})
	if err != nil {
		return fmt.Errorf("subscribe to %s: %w", stream.ProgressFilter(p.group), err)
	}
	p.mu.Lock()
	p.sub = sub
	p.mu.Unlock()
	return nil
}

// Close ends the subscription.
func (p *Progress) Close() error {
	p.mu.Lock()
	sub := p.sub
	p.sub = nil
	p.mu.Unlock()
	if sub == nil {
		return nil
	}
	return sub.Unsubscribe()
}

// Changed returns a channel closed at the partition's next notification. Take it before
// reading the checkpoint, so that a commit between the read and the wait is not missed.
func (p *Progress) Changed(partition int) <-chan struct{} {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	c, ok := p.wake[partition]
	if !ok {
		c = make(chan struct{})
		p.wake[partition] = c
	}
	return c
}

func (p *Progress) notify(partition int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.wake[partition]; ok {
		close(c)
		delete(p.wake, partition)
	}
}
