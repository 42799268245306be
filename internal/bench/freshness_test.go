package bench

import (
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
