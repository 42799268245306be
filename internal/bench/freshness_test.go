package bench

import (
	"math"
	"testing"
	"time"
)

// TestParseServerTiming: the freshness probes split their latency by the query service's
// Server-Timing header; only an answer that names both durations counts.
func TestParseServerTiming(t *testing.T) {
	for _, c := range []struct {
		in         []string
		wait, read time.Duration
		ok         bool
	}{
		{[]string{"consistency;dur=11.204, read;dur=2.873"}, 11204 * time.Microsecond, 2873 * time.Microsecond, true},
		{[]string{"consistency;dur=1.000", "read;dur=0.500"}, time.Millisecond, 500 * time.Microsecond, true},
		{[]string{"read;dur=0.5"}, 0, 500 * time.Microsecond, false},
		{[]string{"consistency;dur=x, read"}, 0, 0, false},
		{nil, 0, 0, false},
	} {
		got := parseServerTiming(c.in)
		if got.ok != c.ok || got.consistency != c.wait || got.read != c.read {
			t.Errorf("parseServerTiming(%q) = %+v, want %v %v %v", c.in, got, c.wait, c.read, c.ok)
		}
	}
}

// TestHistogramQuantile: quantiles of what a histogram observed between two scrapes,
// interpolated inside the bucket that holds the rank.
func TestHistogramQuantile(t *testing.T) {
	const name = "h"
	series := func(until string, counts ...float64) map[string]float64 {
		out := map[string]float64{}
		for i, le := range []string{"0.001", "0.002", "0.004", "+Inf"} {
			out[name+`_bucket{until="`+until+`",le="`+le+`"}`] = counts[i]
		}
		return out
	}
	before := series("committed", 10, 10, 10, 10)
	for k, v := range series("received", 5, 5, 5, 5) {
		before[k] = v
	}
	// Between the scrapes: 50 observations up to 1 ms, 40 in (1, 2] ms, 10 in (2, 4] ms.
	after := series("committed", 60, 100, 110, 110)
	for k, v := range series("received", 5, 5, 5, 5) {
		after[k] = v
	}
	for _, c := range []struct {
		q, want float64
	}{
		{0.5, 0.001},
		{0.7, 0.0015},
		{0.95, 0.003},
		{1, 0.004},
	} {
		got, ok := histogramQuantile(before, after, name, `until="committed"`, c.q)
		if !ok || math.Abs(got-c.want) > 1e-9 {
			t.Errorf("q%.2f = %v, %v; want %v", c.q, got, ok, c.want)
		}
	}
	if _, ok := histogramQuantile(before, after, name, `until="received"`, 0.5); ok {
		t.Error("a quantile of a histogram that observed nothing between the scrapes")
	}
	over := series("committed", 60, 100, 110, 120) // 10 more beyond the last finite bound
	if got, _ := histogramQuantile(before, over, name, `until="committed"`, 0.99); got != 0.004 {
		t.Errorf("q0.99 beyond the last bound = %v, want that bound 0.004", got)
	}
}
