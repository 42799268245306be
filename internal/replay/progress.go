package replay

import (
	"context"
	"fmt"
	"io"
	"time"
)

// progress prints one line, rewritten in place every half second: how far the stream is
// applied, events/s and the ETA.
type progress struct {
	w          io.Writer
	first, end uint64 // the replay covers the stream sequences (first, end]
	start      time.Time
	c          *counters
	stop       chan struct{}
	stopped    chan struct{}
}

func newProgress(w io.Writer, first, end uint64, c *counters) *progress {
	return &progress{w: w, first: first, end: end, start: time.Now(), c: c}
}

// run prints until the returned function is called or ctx ends.
func (p *progress) run(ctx context.Context) func() {
	if p.w == nil {
		return func() {}
	}
	p.stop, p.stopped = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(p.stopped)
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				p.print()
			case <-p.stop:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return func() { close(p.stop); <-p.stopped }
}

func (p *progress) print() {
	done := p.c.applied.Load() + p.c.skipped.Load()
	el := time.Since(p.start).Seconds()
	rate := 0.0
	if el > 0 {
		rate = float64(done) / el
	}
	// The events to apply, estimated from what the reader found so far: the stream sequences
	// it covered hold that many (a tenant filter, or a purge, leaves gaps).
	pos := p.c.readPos.Load()
	total := float64(p.end - p.first)
	if pos > p.first {
		total = float64(p.c.read.Load()) * float64(p.end-p.first) / float64(pos-p.first)
	}
	pct := 100.0
	if total > 0 {
		pct = min(100, 100*float64(done)/total)
	}
	eta := "?"
	if rate > 0 {
		eta = time.Duration(max(0, total-float64(done)) / rate * float64(time.Second)).Round(time.Second).String()
	}
	width := 30
	filled := int(pct / 100 * float64(width))
	bar := make([]byte, width)
	for i := range bar {
		bar[i] = '.'
		if i < filled {
			bar[i] = '#'
		}
	}
	fmt.Fprintf(p.w, "\r[%s] %5.1f%%  read to seq %d/%d  %d events  %.0f events/s  ETA %s   ", bar, pct, pos, p.end, done, rate, eta)
}

func (p *progress) finish() {
	if p.w != nil && p.c.applied.Load()+p.c.skipped.Load() > 0 {
		p.print()
		fmt.Fprintln(p.w)
	}
}
