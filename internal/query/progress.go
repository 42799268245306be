package query

import (
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/engram-memory/engram/internal/stream"
)

// Progress turns the projectors' progress notifications (stream.ProgressRoot) into wake-ups
// for WaitFor: a read waiting for a consistency token reads the partition's checkpoint again
// as soon as the projector says it committed, instead of at its next poll. The checkpoint in
// the graph still decides; a lost notification costs a poll interval.
//
// A notification also says how far the partition's checkpoint got. Reached trusts that
// position for a moment (progressTrust) after it arrived, so that the read it woke need not
// read the checkpoint back from the graph: the projector publishes it after its transaction
// committed, and only the projector's NATS user may publish on these subjects
// (deploy/nats/accounts.conf). The latest notification counts, not the highest, and only while
// fresh: after a restore of Neo4j from a backup the checkpoint goes back, and a position
// remembered from before must not vouch for writes the graph lost.
type Progress struct {
	mu      sync.Mutex
	wake    map[int]chan struct{} // closed at the next notification of the partition
	reached map[int]notified      // the latest notification of each partition
	sub     *nats.Subscription
	group   string
	now     func() time.Time
}

type notified struct {
	seq uint64
	at  time.Time
}

// progressTrust is how long a notified position stands for the checkpoint.
const progressTrust = time.Second

// NewProgress returns a Progress that no notification reaches yet; Subscribe starts them.
func NewProgress(group string) *Progress {
	return &Progress{wake: map[int]chan struct{}{}, reached: map[int]notified{}, group: group, now: time.Now}
}

// Reached returns the checkpoint the partition's latest notification named, if it arrived
// within progressTrust; 0 otherwise.
func (p *Progress) Reached(partition int) uint64 {
	if p == nil {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	n, ok := p.reached[partition]
	if !ok || p.now().Sub(n.at) > progressTrust {
		return 0
	}
	return n.seq
}

// Subscribe receives group's notifications on nc until Close.
func (p *Progress) Subscribe(nc *nats.Conn) error {
	sub, err := nc.Subscribe(stream.ProgressFilter(p.group), func(m *nats.Msg) {
		if part, seq, ok := stream.ParseProgress(m.Subject, m.Data); ok {
			p.notify(part, seq)
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

func (p *Progress) notify(partition int, seq uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reached[partition] = notified{seq: seq, at: p.now()}
	if c, ok := p.wake[partition]; ok {
		close(c)
		delete(p.wake, partition)
	}
}
