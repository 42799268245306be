package events

import (
	"fmt"
	"testing"
)

// TestToolCallDurationIsBounded: a tool call's duration beyond MaxToolCallDurationMS fails the
// schema, so an agent publishing one over NATS has that event dead-lettered (schema_invalid)
// instead of overflowing the global Tool aggregate for every tenant (issue 12, finding 2).
func TestToolCallDurationIsBounded(t *testing.T) {
	t.Parallel()
	body := func(d string) []byte {
		return []byte(`{"trace_id":"01968f4c-1d2e-7a3b-8c4d-5e6f7a8b9c0d","step_id":"01968f4c-1d2e-7a3b-8c4d-5e6f7a8b9c0e",` +
			`"tool_call_id":"01968f4c-1d2e-7a3b-8c4d-5e6f7a8b9c0f",` +
			`"tool_name":"search","status":"success","duration_ms":` + d + `}`)
	}
	for _, c := range []struct {
		duration string
		ok       bool
	}{
		{"0", true},
		{fmt.Sprint(MaxToolCallDurationMS), true},
		{fmt.Sprint(MaxToolCallDurationMS + 1), false},
		{"9223372036854775000", false},
	} {
		err := ValidateData(KindToolCallRecorded, body(c.duration))
		if (err == nil) != c.ok {
			t.Errorf("duration_ms %s: err %v, want ok=%v", c.duration, err, c.ok)
		}
	}
}
