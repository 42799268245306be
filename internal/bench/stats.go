package bench

import (
	"slices"
	"sync"
	"time"
)

// Latencies collects every sample of a timed step; runs are short enough to keep them all,
// which gives exact percentiles.
type Latencies struct {
	mu      sync.Mutex
	samples []time.Duration
	errors  int
	first   error
}

// Add records one successful operation's latency.
func (l *Latencies) Add(d time.Duration) {
	l.mu.Lock()
	l.samples = append(l.samples, d)
	l.mu.Unlock()
}

// Fail records a failed operation; the first error is kept for the report.
func (l *Latencies) Fail(err error) {
	l.mu.Lock()
	l.errors++
	if l.first == nil {
		l.first = err
	}
	l.mu.Unlock()
}

// Summary is the distribution of a step's latencies.
type Summary struct {
	Count  int           `json:"count"`
	Errors int           `json:"errors"`
	P50    time.Duration `json:"p50_ns"`
	P99    time.Duration `json:"p99_ns"`
	Max    time.Duration `json:"max_ns"`
	First  error         `json:"-"`
}

// Summary sorts the samples and returns their percentiles.
func (l *Latencies) Summary() Summary {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := Summary{Count: len(l.samples), Errors: l.errors, First: l.first}
	if len(l.samples) == 0 {
		return s
	}
	slices.Sort(l.samples)
	s.P50 = quantile(l.samples, 0.50)
	s.P99 = quantile(l.samples, 0.99)
	s.Max = l.samples[len(l.samples)-1]
	return s
}

// quantile of sorted samples, nearest-rank.
func quantile(sorted []time.Duration, q float64) time.Duration {
	i := int(q*float64(len(sorted))+0.5) - 1
	i = max(0, min(i, len(sorted)-1))
	return sorted[i]
}

// ms converts a duration to float milliseconds for the report.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
