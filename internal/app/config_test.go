package app

import (
	"errors"
	"flag"
	"strings"
	"testing"
	"time"
)

func load(t *testing.T, env map[string]string, args ...string) (Common, error) {
	t.Helper()
	var c Common
	f := NewFlags(flag.NewFlagSet("test", flag.ContinueOnError), func(k string) string { return env[k] })
	BindCommon(f, &c, "test", "127.0.0.1:0")
	parseErr := f.Parse(args)
	return c, errors.Join(parseErr, c.Validate())
}

func TestCommonDefaultsAreValid(t *testing.T) {
	t.Parallel()
	c, err := load(t, nil)
	if err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if c.NATSURL != "nats://127.0.0.1:4222" || c.Neo4j.URI != "bolt://127.0.0.1:7687" || !c.MultiTenant || c.Duplicates != 2*time.Minute || c.StreamReplicas != 1 {
		t.Fatalf("unexpected defaults %+v", c)
	}
}

func TestCommonEnvAndFlags(t *testing.T) {
	t.Parallel()
	c, err := load(t, map[string]string{"NATS_URL": "nats://nats:4222", "MULTI_TENANT": "false"}, "-neo4j-uri", "neo4j://db:7687")
	if err != nil {
		t.Fatal(err)
	}
	if c.NATSURL != "nats://nats:4222" || c.MultiTenant || c.Neo4j.URI != "neo4j://db:7687" {
		t.Fatalf("env or flag ignored: %+v", c)
	}
}

func TestCommonReportsEveryProblem(t *testing.T) {
	t.Parallel()
	_, err := load(t, map[string]string{
		"MULTI_TENANT":          "maybe",
		"PUBLISH_TIMEOUT":       "soon",
		"NATS_DUPLICATE_WINDOW": "10s",
		"LOG_LEVEL":             "loud",
		"HTTP_ADDR":             "nowhere",
		"START_TIMEOUT":         "0s",
		"NATS_STREAM_REPLICAS":  "7",
	}, "-nats-url", "")
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"MULTI_TENANT", "PUBLISH_TIMEOUT", "NATS_DUPLICATE_WINDOW", "LOG_LEVEL", "HTTP_ADDR", "NATS_URL", "START_TIMEOUT", "NATS_STREAM_REPLICAS"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s: %v", want, err)
		}
	}
}
