package replay

import (
	"fmt"
	"io"
	"time"
)

// progress prints one line, rewritten in place: events done, events/s and the ETA.
type progress struct {
	w          io.Writer
	first, end uint64
	start      time.Time
	lastPrint  time.Time
	count      int
	seq        uint64
}

func newProgress(w io.Writer, done, last uint64) *progress {
	return &progress{w: w, first: done, end: last, start: time.Now()}
}

func (p *progress) update(seq uint64, count int) {
	p.seq, p.count = seq, count
	if p.w == nil || time.Since(p.lastPrint) < 500*time.Millisecond {
		return
	}
	p.print("\r")
}

func (p *progress) print(prefix string) {
	p.lastPrint = time.Now()
	el := time.Since(p.start).Seconds()
	rate := 0.0
	if el > 0 {
		rate = float64(p.count) / el
	}
	total := p.end - p.first
	doneSeq := p.seq - p.first
	pct := 100.0
	if total > 0 {
		pct = 100 * float64(doneSeq) / float64(total)
	}
	eta := "?"
	if rate > 0 && doneSeq > 0 {
		// Sequences left, scaled by events read per sequence so far (a tenant filter skips many).
		perSeq := float64(p.count) / float64(doneSeq)
		eta = time.Duration(float64(total-doneSeq) * perSeq / rate * float64(time.Second)).Round(time.Second).String()
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
	fmt.Fprintf(p.w, "%s[%s] %5.1f%%  seq %d/%d  %d events  %.0f events/s  ETA %s   ", prefix, bar, pct, p.seq, p.end, p.count, rate, eta)
}

func (p *progress) finish() {
	if p.w != nil && p.count > 0 {
		p.print("\r")
		fmt.Fprintln(p.w)
	}
}
