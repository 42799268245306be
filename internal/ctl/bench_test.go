package ctl

import (
	"bytes"
	"strings"
	"testing"
)

func TestBenchRefusesNonsense(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		want []string // the message names these
	}{
		{[]string{"-duration", "0"}, []string{"-duration 0s: must be positive"}},
		{[]string{"-duration", "-5s"}, []string{"-duration -5s"}},
		{[]string{"-rate", "-1"}, []string{"-rate -1: must not be negative"}},
		{[]string{"-concurrency", "8,abc"}, []string{`"abc" is not an integer`}},
		{[]string{"-concurrency", "0"}, []string{"-concurrency 0"}},
		{[]string{"-scenarios", "ingest-http,warp"}, []string{`unknown scenario "warp"`}},
		{[]string{"-events", "-1", "-users", "0"}, []string{"-events -1", "-users 0"}},
		{[]string{"extra"}, []string{"unexpected arguments"}},
	}
	for _, tt := range tests {
		var out, errOut bytes.Buffer
		code := Main(t.Context(), append([]string{"bench"}, tt.args...), &out, &errOut, func(string) string { return "" })
		if code == 0 {
			t.Errorf("bench %v: exit 0, want an error", tt.args)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(errOut.String(), w) {
				t.Errorf("bench %v: stderr %q does not say %q", tt.args, errOut.String(), w)
			}
		}
		if out.Len() != 0 {
			t.Errorf("bench %v wrote to stdout: %q", tt.args, out.String())
		}
	}
}

func TestBenchConfigFromEnvironment(t *testing.T) {
	t.Parallel()
	env := map[string]string{"NATS_URL": "nats://127.0.0.1:4999", "QUERY_URL": "http://127.0.0.1:9081", "NEO4J_URI": "bolt://db:7687"}
	c, err := benchConfig([]string{"-scenarios", "reads", "-users", "10"}, &bytes.Buffer{}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if c.Endpoints.NATSURL != env["NATS_URL"] || c.Endpoints.QueryURL != env["QUERY_URL"] || c.Endpoints.Neo4j.URI != env["NEO4J_URI"] {
		t.Errorf("endpoints %+v do not come from the environment", c.Endpoints)
	}
	if len(c.Scenarios) != 1 || c.Scenarios[0] != "reads" || c.Users != 10 {
		t.Errorf("flags not applied: %+v", c)
	}
}
